"""Message content: ``data.display_text`` per type, order totals, ``data.attribution``."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wa_bridge.events import CanonicalEvent
from wa_bridge.mapping import load_mapping
from wa_bridge.normalize import normalize_webhook
from wa_bridge.normalize._attribution import UTM_KEYS, attribution_of, utms_of
from wa_bridge.normalize._display import MAX_COMPOSED_CHARS
from wa_bridge.normalize._order import order_of

from ._samples import RECEIVED_AT, events, load, sample_names

ROOT = Path(__file__).resolve().parents[2]
W = "AAAAHBgNNTIxNTU1MDAwMTIzNBUCABIYFA=="  # the tail of every sample wamid

DISPLAY = [
    ("text_mx", 0, "Hola, ¿me cotizan una mesa de roble para 6?"),
    ("button_and_referral_mx", 0, "Quick reply: No me interesa (payload BAJA_PROMOS)"),
    ("interactive_ar", 0, "Button reply: Sí, confirmo (id turno_si)"),
    ("interactive_ar", 1, "List reply: Palermo – Av. Santa Fe 3200 (id suc_palermo)"),
    ("interactive_ar", 2, "Flow response: plan: familiar, cuotas: 6"),
    (
        "location_and_cards_co",
        0,
        "Location: Tienda El Poblado, Cra 43A, Medellín — https://maps.google.com/?q=6.2442,-75.5812",
    ),
    ("location_and_cards_co", 1, "Contact card: Lina Ospina (+57 300 555 0999)"),
    ("identity_mx_request_1_card", 0, "Own contact info: +52 1 55 6000 3001"),
    ("media_br", 0, "[Image] Segue a foto do defeito (media id 9000000000000002)"),
    ("media_br", 1, "[Document nota_fiscal_0042.pdf] (media id 9000000000000003)"),
    ("media_br", 2, "[Voice note] (media id 9000000000000004)"),
    ("media_br", 3, "[Video] (media id 9000000000000005)"),
    ("media_br", 4, "[Animated sticker] (media id 9000000000000006)"),
    ("reactions_cl", 0, f"Reaction 👍 to message wamid.TEST000902{W}"),
    ("reactions_cl", 1, f"Reaction removed from message wamid.TEST000902{W}"),
    (
        "order_mx",
        0,
        "Order (catalog 800000000000001): 1 × SKU-ROBLE-6 at 12999.5 MXN; total 12999.5 MXN."
        " Note: Para entrega el sábado",
    ),
    ("unsupported_edit_revoke_co", 0, "Unsupported message (poll): Message type unknown"),
    (
        "unsupported_edit_revoke_co",
        1,
        f"Edited message wamid.TEST000007{W}: Corrijo: Cra 43B",
    ),
    ("unsupported_edit_revoke_co", 2, f"Deleted message wamid.TEST000008{W}"),
    ("system_ar", 0, "System: User changed number"),
    (
        "content_mixed_co",
        3,
        "Order (catalog 800000000000004): 1 × SKU-SOFA-01 at 1899000 COP,"
        " 3 × SKU-COJIN-02 at 45000 COP; total 2034000 COP",
    ),
    (
        "content_mixed_co",
        4,
        "Order (catalog 800000000000004): 1 × SKU-SOFA-01 at 1899000 COP,"
        " 1 × SKU-LAMP-09 at 49.9 USD. Note: Uno en dólares",
    ),
    (
        "content_mixed_co",
        5,
        'Flow response: servicio: instalacion, fecha: 2026-06-20, extras: ["cortinas","persianas"]',
    ),
    (
        "content_mixed_co",
        6,
        "Interactive reply (call_permission_reply): response: accept, response_source: user_action",
    ),
    ("content_mixed_co", 7, "[request_welcome message]"),
    ("content_mixed_co", 8, "Unsupported message: Unsupported message type"),
    (
        "content_mixed_co",
        9,
        "Contact card: Sara Gómez (sara@example.co); Contact card: Tienda Sur (+57 604 555 0102)",
    ),
    ("content_mixed_co", 10, "Flow response"),  # response_json that is not JSON
    (
        "echo_content_co",
        0,
        "[Document cotizacion_0531.pdf] Su cotización (media id 9000000000000631)",
    ),
    ("echo_content_co", 1, f"Edited message wamid.TEST000531{W}: Corrijo: mañana a las 10"),
    ("echo_content_co", 2, f"Deleted message wamid.TEST000532{W}"),
]


@pytest.mark.parametrize(("sample", "index", "expected"), DISPLAY)
def test_display_text_per_type(sample: str, index: int, expected: str) -> None:
    assert events(sample)[index].data["display_text"] == expected


def test_every_message_of_every_sample_reads_as_something() -> None:
    kinds = {"whatsapp.message.received", "whatsapp.message.echo", "whatsapp.history.message"}
    found = [e for name in sample_names() for e in events(name) if e.type in kinds]
    assert len(found) > 60
    assert all(e.data.get("display_text") for e in found), [
        e.id for e in found if not e.data.get("display_text")
    ]


def test_a_text_reads_as_its_body_untouched() -> None:
    for name in sample_names():
        for event in events(name):
            if event.data.get("message_type") == "text":
                assert event.data["display_text"] == event.data["text"]["body"]


def test_flow_token_is_never_shown() -> None:
    (flow,) = [e for e in events("content_mixed_co") if e.data["message_type"] == "interactive"][:1]
    assert flow.data["interactive"]["response"]["flow_token"] == "tok-0516"  # kept as data
    assert "tok-0516" not in flow.data["display_text"]
    assert "flow_token" not in flow.data["display_text"]
    assert "lead-0001" not in events("interactive_ar")[2].data["display_text"]


def test_a_body_less_message_type_still_reads() -> None:
    body = copy.deepcopy(load("interactive_ar"))
    del body["entry"][0]["changes"][0]["value"]["messages"][0]["interactive"]
    first = normalize_webhook(body, received_at=RECEIVED_AT)[0]
    assert first.data["display_text"] == "Interactive reply"


def test_composed_text_is_capped_for_every_mapping() -> None:
    body = copy.deepcopy(load("order_mx"))
    order = body["entry"][0]["changes"][0]["value"]["messages"][0]["order"]
    item = order["product_items"][0]
    order["product_items"] = [{**item, "product_retailer_id": f"SKU-{n:04}"} for n in range(300)]
    (event,) = normalize_webhook(body, received_at=RECEIVED_AT)
    text = event.data["display_text"]
    assert len(text) <= MAX_COMPOSED_CHARS
    assert ", …; total 3899850 MXN" in text  # 20 items listed, the total of all 300
    assert event.data["order"]["total"] == 3899850


# ------------------------------------------------------------------------ orders


def test_order_total_and_currency_are_data() -> None:
    (order,) = events("order_mx")
    assert (order.data["order"]["total"], order.data["order"]["currency"]) == (12999.5, "MXN")
    assert order.data["order"]["product_items"][0]["product_retailer_id"] == "SKU-ROBLE-6"
    one_currency, two_currencies = events("content_mixed_co")[3:5]
    assert one_currency.data["order"]["total"] == 2034000
    assert isinstance(one_currency.data["order"]["total"], int)
    assert one_currency.data["order"]["currency"] == "COP"
    assert two_currencies.data["order"]["total"] is None
    assert two_currencies.data["order"]["currency"] is None


@pytest.mark.parametrize(
    ("items", "total", "currency"),
    [
        ([{"quantity": 4, "item_price": 349.5, "currency": "MXN"}], 1398, "MXN"),
        ([{"quantity": 3, "item_price": 0.1, "currency": "USD"}], 0.3, "USD"),  # no float drift
        ([{"quantity": 1, "item_price": "7.99", "currency": "BRL"}], 7.99, "BRL"),
        ([{"quantity": 1, "currency": "BRL"}], None, None),
        ([{"quantity": True, "item_price": 5, "currency": "BRL"}], None, None),
        ([{"quantity": 1, "item_price": "NaN", "currency": "BRL"}], None, None),
        ([{"quantity": 10**9, "item_price": 10**9, "currency": "BRL"}], None, None),  # > 2**53
        # The decimal rules every reader shares (wa_bridge.normalize.decimals):
        # 35 characters were refused here (at most 30), and are taken everywhere now;
        (
            [{"quantity": 1, "item_price": "0." + "1" * 33, "currency": "BRL"}],
            0.1111111111111111,
            "BRL",
        ),
        # an exponent bomb made the sum raise decimal.Overflow, and a tiny one summed to 0.
        ([{"quantity": "1e999999", "item_price": "1e999999", "currency": "BRL"}], None, None),
        ([{"quantity": "1e-999999", "item_price": "1e-999999", "currency": "BRL"}], None, None),
        ([{"quantity": 1, "item_price": "1e-50", "currency": "BRL"}], None, None),
        (["not an item"], None, None),
        ([], None, None),
    ],
)
def test_order_totals(items: list[object], total: object, currency: object) -> None:
    out = order_of({"catalog_id": "1", "product_items": items})
    assert (out["total"], out["currency"]) == (total, currency)
    assert out["product_items"] == items  # Meta's items kept as sent


# ------------------------------------------------------------------- attribution


def test_attribution_from_a_referral_with_utms() -> None:
    image = events("content_mixed_co")[2]
    assert image.data["attribution"] == {
        "origin": "referral",
        "ctwa_clid": "ARAtestCtwaClid0611",
        "source_type": "ad",
        "source_id": "120000000000000611",
        "source_url": "https://tienda.example.co/lp?utm_source=facebook&utm_medium=paid_social"
        "&utm_campaign=lanzamiento",
        "headline": "Sofás a medida",
        "body": "Envío gratis en Medellín",
        "media_type": "video",
        "utm_source": "facebook",
        "utm_medium": "paid_social",
        "utm_campaign": "lanzamiento",
        "utm_term": None,
        "utm_content": None,
    }
    assert image.data["referral"]["video_url"].endswith(".mp4")  # the referral itself stays


def test_attribution_from_a_referral_without_utms() -> None:
    ad = events("button_and_referral_mx")[1]
    assert ad.data["attribution"]["origin"] == "referral"
    assert ad.data["attribution"]["ctwa_clid"] == "ARAtestCtwaClid0001"
    assert all(ad.data["attribution"][k] is None for k in UTM_KEYS)


def test_attribution_from_the_first_link_with_utms_in_the_text() -> None:
    with_utms, plain_link = events("content_mixed_co")[:2]
    assert with_utms.data["attribution"] == {
        "origin": "text_link",
        "ctwa_clid": None,
        "source_type": None,
        "source_id": None,
        # the sentence's full stop is not part of the link
        "source_url": "https://tienda.example.co/promo?utm_source=google&utm_medium=cpc"
        "&utm_campaign=verano&utm_term=sofa+cama&utm_content=ad_2",
        "headline": None,
        "body": None,
        "media_type": None,
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "verano",
        "utm_term": "sofa cama",
        "utm_content": "ad_2",
    }
    assert "attribution" not in plain_link.data  # a link without UTMs says nothing
    assert all("attribution" not in e.data for e in events("text_mx"))


def test_what_the_business_sends_is_never_attribution() -> None:
    link_echo = events("echo_content_co")[3]
    assert "utm_source=whatsapp" in link_echo.data["display_text"]
    assert "attribution" not in link_echo.data


@pytest.mark.parametrize(
    ("text", "url"),
    [
        (
            "ver https://a.example/x?utm_source=ig y https://b.example/?utm_source=fb",
            "https://a.example/x?utm_source=ig",
        ),
        (
            "sin utm https://a.example/x, con: www.b.example/?utm_medium=mail!",
            "www.b.example/?utm_medium=mail",
        ),
        ("(HTTPS://A.EXAMPLE/?utm_campaign=mayo)", "HTTPS://A.EXAMPLE/?utm_campaign=mayo"),
    ],
)
def test_the_link_is_found_and_trimmed(text: str, url: str) -> None:
    found = attribution_of(None, text)
    assert found is not None and found["source_url"] == url


def test_utms_of_odd_urls() -> None:
    assert utms_of("https://[::1/?utm_source=x") == dict.fromkeys(UTM_KEYS)  # bad netloc
    assert utms_of("https://a.example/?utm_source=&utm_medium=%20mail%20")["utm_medium"] == "mail"
    assert utms_of("https://a.example/?utm_source=")["utm_source"] is None
    assert utms_of("https://a.example/?utm_source=a&utm_source=b")["utm_source"] == "a"


@given(st.text(max_size=200))
def test_text_without_utm_is_never_searched(text: str) -> None:
    found = attribution_of(None, text)
    if "utm_" not in text:
        assert found is None
    elif found is not None:
        assert found["origin"] == "text_link" and found["source_url"] in text


# ---------------------------------------------------------- through the mapping


@pytest.mark.parametrize("mapping_file", ["sql.yaml", "rest.yaml", "hubspot.yaml"])
def test_each_message_note_body_is_its_display_text(mapping_file: str) -> None:
    mapping = load_mapping(ROOT / "mappings" / mapping_file)
    checked: list[CanonicalEvent] = []
    for name in sample_names():
        for event in events(name):
            if event.type not in ("whatsapp.message.received", "whatsapp.message.echo"):
                continue
            (note,) = [op for op in mapping.apply(event) if op.kind == "add_note"]
            assert note.fields["body"] == event.data["display_text"], event.id
            checked.append(event)
    assert {e.data["message_type"] for e in checked} >= {
        "text",
        "image",
        "document",
        "audio",
        "video",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "button",
        "reaction",
        "order",
        "unsupported",
        "unknown",
        "edit",
        "revoke",
        "system",
    }


def test_a_contact_request_card_without_details_still_reads() -> None:
    body = copy.deepcopy(load("identity_mx_request_1_card"))
    for card in body["entry"][0]["changes"][0]["value"]["messages"][0]["contacts"]:
        card.pop("phones", None)
        card.pop("name", None)
    (event,) = normalize_webhook(body, received_at=RECEIVED_AT)
    assert event.data["display_text"] == "Own contact info"
