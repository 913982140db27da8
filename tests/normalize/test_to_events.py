"""normalize_webhook on the project's own samples: ids, order, identity, times, bodies."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest

from wa_bridge.errors import InvalidEvent
from wa_bridge.normalize import NotAWebhook, normalize_webhook

from ._samples import RECEIVED_AT, RECVTIME, events, load, sample_names


def test_there_are_enough_samples() -> None:
    assert len(sample_names()) >= 15


@pytest.mark.parametrize("name", sample_names())
def test_ids_are_deterministic_and_distinct(name: str) -> None:
    first, second = events(name), events(name)
    assert first, name
    assert [e.id for e in first] == [e.id for e in second]
    assert [e.to_dict() for e in first] == [e.to_dict() for e in second]
    assert len({e.id for e in first}) == len(first)


def test_ids_distinct_across_all_samples() -> None:
    ids = [e.id for name in sample_names() for e in events(name)]
    assert len(ids) == len(set(ids))


def test_a_retry_at_another_time_keeps_ids_but_not_recvtime() -> None:
    body = load("statuses_br")
    later = normalize_webhook(body, received_at=RECEIVED_AT + timedelta(hours=30))
    now = events("statuses_br")
    assert [e.id for e in later] == [e.id for e in now]
    assert later[0].recvtime != now[0].recvtime
    assert later[0].time == now[0].time


def test_batch_order_is_payload_order() -> None:
    evs = events("batch_multi")
    bodies = [e.data.get("text", {}).get("body") for e in evs]
    assert [e.type for e in evs] == [
        "whatsapp.message.received",
        "whatsapp.message.received",
        "whatsapp.message.status",
        "whatsapp.message.received",
    ]
    assert bodies == ["primero", "segundo", None, "tercero"]
    assert [e.wabaid for e in evs] == ["300000000000001"] * 3 + ["300000000000005"]
    assert evs[3].source == "whatsapp:400000000000005"


def test_text_message_envelope_and_contact() -> None:
    (ev,) = events("text_mx")
    assert ev.type == "whatsapp.message.received"
    assert ev.id == "wa:messages:" + ev.data["message_id"]
    assert ev.source == "whatsapp:400000000000001"
    assert ev.wabaid == "300000000000001"
    assert ev.time == "2026-06-11T17:46:40Z"
    assert ev.recvtime == RECVTIME
    assert ev.subject == "+525550001234"
    assert ev.data["contact"] == {
        "key": "+525550001234",
        "phone_e164": "+525550001234",
        "wa_id": "5215550001234",  # the reply address exactly as Meta sent it
        "user_id": "MX.9000000000000000001",
        "parent_user_id": "MX.ENT.9000000000000000001",
        "username": None,
        "profile_name": "Renata Olvera",
        "country": "MX",
    }
    assert ev.data["text"] == {"body": "Hola, ¿me cotizan una mesa de roble para 6?"}
    assert ev.data["raw"] == load("text_mx")["entry"][0]["changes"][0]["value"]["messages"][0]


def test_bsuid_only_user_is_keyed_by_bsuid() -> None:
    (ev,) = events("bsuid_only_ar")
    assert ev.subject == "bsuid:AR.9000000000000000077"
    contact = ev.data["contact"]
    assert contact["phone_e164"] is None and contact["wa_id"] is None
    assert contact["username"] == "sofi.arg"
    assert contact["parent_user_id"] == "AR.ENT.9000000000000000077"
    assert contact["country"] == "AR"  # from the BSUID's country prefix


def test_statuses_ids_times_and_failed_without_contacts() -> None:
    sent, delivered, read, played, failed = events("statuses_br")
    assert [e.data["status"] for e in (sent, delivered, read, played, failed)] == [
        "sent",
        "delivered",
        "read",
        "played",
        "failed",
    ]
    assert sent.id.endswith(":sent") and delivered.id.endswith(":delivered")
    assert sent.id != delivered.id
    assert sent.time == "2026-06-11T17:48:10Z"  # int timestamp
    assert delivered.time == "2026-06-11T17:48:11Z"  # string timestamp
    assert sent.data["conversation_id"] == "conv0000000000000000000000000001"
    assert sent.data["conversation"]["origin"] == "marketing"
    assert sent.data["conversation"]["expiration"] == "2026-06-12T17:46:40Z"
    assert sent.data["biz_opaque_callback_data"] == "crm-deal-7781"
    assert sent.data["pricing"]["category"] == "marketing"
    assert sent.data["contact"]["parent_user_id"] == "BR.ENT.9000000000000000003"  # old name
    assert failed.subject == "+551150001234"  # 12-digit legacy id, no contacts block
    assert failed.data["contact"]["profile_name"] is None
    assert failed.data["errors"][0]["code"] == 131026
    assert failed.data["errors"][0]["details"] == "Recipient is not a WhatsApp user."


def test_group_statuses_per_participant_get_distinct_ids() -> None:
    msg, st1, st2 = events("group_ar")
    assert msg.data["group_id"] == "Y2FwaV9ncm91cDpURVNUMDAwMQ=="
    assert st1.id != st2.id
    assert st1.subject == "+5491150007788" and st2.subject == "+5493510004455"
    assert st2.data["contact"]["profile_name"] == "Bruno Sosa"
    assert "5493510004455" not in st2.id  # no phone number inside an id


def test_value_level_errors_become_whatsapp_error() -> None:
    first, second = events("value_errors_mx")
    assert first.type == second.type == "whatsapp.error"
    assert first.subject is None
    assert first.data["code"] == 131056
    assert first.data["details"] == "Too many messages to one recipient"
    assert first.data["href"] == "/docs/errors"
    assert second.data["href"] is None
    assert first.time == RECVTIME  # no Meta time anywhere: receipt time, and only then


def test_unknown_fields_keep_the_raw_object() -> None:
    evs = events("unknown_fields")
    assert [e.type for e in evs] == ["whatsapp.unknown"] * 4
    assert [e.data["field"] for e in evs] == ["automatic_events", "calls", "security", "messages"]
    body = load("unknown_fields")
    changes = body["entry"][0]["changes"]
    assert [e.data["raw"] for e in evs] == [c["value"] for c in changes]
    assert all(e.id.startswith("wa:unknown:") and len(e.id) == len("wa:unknown:") + 32 for e in evs)
    assert evs[2].time == "2026-06-11T17:49:00Z"  # entry.time fallback


def test_interactive_replies_and_nfm_decoded() -> None:
    button, listed, flow = events("interactive_ar")
    assert button.data["interactive"] == {
        "type": "button_reply",
        "id": "turno_si",
        "title": "Sí, confirmo",
    }
    assert button.data["context"]["id"].startswith("wamid.TEST")
    assert listed.data["interactive"]["description"] == "Av. Santa Fe 3200"
    assert flow.data["interactive"]["response"] == {
        "flow_token": "lead-0001",
        "plan": "familiar",
        "cuotas": 6,
    }


def test_button_and_referral() -> None:
    button, ad = events("button_and_referral_mx")
    assert button.data["button"] == {"payload": "BAJA_PROMOS", "text": "No me interesa"}
    assert ad.data["referral"]["ctwa_clid"] == "ARAtestCtwaClid0001"
    assert ad.data["referral"]["source_type"] == "ad"
    assert ad.subject == "+523350004321"


def test_media_types() -> None:
    image, document, audio, video, sticker = events("media_br")
    assert image.data["media"]["caption"] == "Segue a foto do defeito"
    assert image.data["media"]["url"].startswith("https://")
    assert document.data["media"]["filename"] == "nota_fiscal_0042.pdf"
    assert audio.data["media"]["voice"] is True
    assert video.data["media"]["type"] == "video"
    assert sticker.data["media"]["animated"] is True


def test_reactions_and_removal() -> None:
    added, removed = events("reactions_cl")
    assert added.data["reaction"]["removed"] is False and added.data["reaction"]["emoji"] == "👍"
    assert removed.data["reaction"] == {
        "message_id": added.data["reaction"]["message_id"],
        "emoji": None,
        "removed": True,
    }


def test_location_shared_cards_are_not_the_sender() -> None:
    location, cards = events("location_and_cards_co")
    assert location.data["location"]["latitude"] == 6.2442
    assert cards.subject == "+573005550123"  # the sender, not the shared card
    assert cards.data["shared_contacts"][0]["name"]["formatted_name"] == "Lina Ospina"


def test_system_messages() -> None:
    changed_number, changed_id, identity = events("system_ar")
    assert changed_number.data["system"]["new_phone_e164"] == "+5491150009900"
    # the notice is about the person as it leaves them: the new number, to reply to
    assert changed_number.subject == "+5491150009900"
    assert changed_number.data["contact"]["wa_id"] == "5491150009900"
    assert changed_number.data["identity_change"] == {
        "notice": "user_changed_number",
        "kind": "number",
        "previous": {
            "phone_e164": "+5491150007788",
            "wa_id": "5491150007788",
            "user_id": None,
            "parent_user_id": None,
        },
        "current": {
            "phone_e164": "+5491150009900",
            "wa_id": "5491150009900",
            "user_id": None,
            "parent_user_id": None,
        },
    }
    assert changed_id.data["system"]["user_id"] == "AR.9000000000000000099"
    assert changed_id.data["identity_change"]["kind"] == "user_id"
    assert changed_id.data["identity_change"]["current"]["user_id"] == "AR.9000000000000000099"
    assert changed_id.data["contact"]["phone_e164"] == "+5491150007788"  # the phone stays
    assert identity.data["identity"]["acknowledged"] is True
    assert "identity_change" not in identity.data  # a security-code change moves no id
    assert identity.subject == "+5491150007788"


def test_unsupported_edit_revoke_and_order() -> None:
    unsupported, edit, revoke = events("unsupported_edit_revoke_co")
    assert unsupported.data["unsupported"] == {"type": "poll"}
    assert unsupported.data["errors"][0]["code"] == 131051
    assert edit.data["edit"]["message"]["text"]["body"] == "Corrijo: Cra 43B"
    assert revoke.data["revoke"]["original_message_id"].startswith("wamid.")
    (order,) = events("order_mx")
    assert order.data["order"]["product_items"][0]["item_price"] == 12999.5


def test_echo_is_about_the_customer() -> None:
    (echo,) = events("echo_co")
    assert echo.type == "whatsapp.message.echo"
    assert echo.id == "wa:echo:" + echo.data["message_id"]
    assert echo.data["direction"] == "outbound"
    assert echo.subject == "+573005550123"
    assert echo.data["contact"]["user_id"] == "CO.9000000000000000004"


def test_account_batch() -> None:
    status, quality, category, phone, account = events("account_batch")
    assert status.id == "wa:template.status:7000000000000001:APPROVED:1781200120"
    assert status.data["template_id"] == "7000000000000001"
    assert status.time == "2026-06-11T17:48:40Z"
    assert quality.id == "wa:template.quality:7000000000000001:YELLOW:1781200120"
    assert category.data["new_category"] == "MARKETING"
    assert phone.type == "whatsapp.phone_number.quality" and phone.data["event"] == "UPGRADE"
    assert phone.source == "whatsapp:waba:300000000000002"
    assert account.type == "whatsapp.account.update"
    assert account.data["event"] == "VERIFIED_ACCOUNT"


def test_user_preferences_and_id_update() -> None:
    prefs, id_update = events("user_updates")
    assert prefs.data["value"] == "stop" and prefs.subject == "+523350004321"
    assert prefs.data["contact"]["profile_name"] == "Diego Salas"
    assert prefs.time == "2026-06-11T17:48:50Z"
    assert id_update.data["previous_user_id"] == "AR.9000000000000000002"
    assert id_update.data["current_user_id"] == "AR.9000000000000000099"
    assert id_update.data["contact"]["user_id"] == "AR.9000000000000000099"


def test_received_at_in_another_zone_is_converted_to_utc() -> None:
    zone = timezone(timedelta(hours=-3))
    (ev,) = normalize_webhook(load("text_mx"), received_at=datetime(2026, 6, 12, 6, 0, tzinfo=zone))
    assert ev.recvtime == "2026-06-12T09:00:00Z"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([], "JSON object"),
        ({"object": "page", "entry": []}, "'object'"),
        ({"object": "whatsapp_business_account"}, "'entry'"),
        ({"object": "whatsapp_business_account", "entry": [1]}, "entry[0]"),
        ({"object": "whatsapp_business_account", "entry": [{}]}, "entry[0].changes"),
        (
            {"object": "whatsapp_business_account", "entry": [{"changes": [7]}]},
            "entry[0].changes[0] must be an object",
        ),
        (
            {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {}}]}]},
            "changes[0].field",
        ),
        (
            {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "x"}]}]},
            "changes[0].value",
        ),
    ],
)
def test_not_a_webhook_says_why(payload: object, reason: str) -> None:
    with pytest.raises(NotAWebhook, match=r".*") as info:
        normalize_webhook(payload, received_at=RECEIVED_AT)
    assert reason in str(info.value)
    assert isinstance(info.value, InvalidEvent)


def test_item_without_wamid_or_odd_status_is_kept_as_unknown() -> None:
    body = copy.deepcopy(load("statuses_br"))
    value = body["entry"][0]["changes"][0]["value"]
    del value["statuses"][0]["id"]
    value["statuses"][1]["status"] = "teleported"
    value["statuses"].append("not an object")
    evs = normalize_webhook(body, received_at=RECEIVED_AT)
    assert [e.type for e in evs][:2] == ["whatsapp.unknown", "whatsapp.unknown"]
    assert evs[1].data["raw"]["status"] == "teleported"
    assert evs[-1].data["raw"] == "not an object"


def test_rfc3339_now_is_the_current_utc_moment_with_microseconds() -> None:
    import re
    from datetime import UTC, datetime, timedelta

    from wa_bridge.normalize.meta import rfc3339_now

    before = datetime.now(UTC)
    texts = [rfc3339_now() for _ in range(2000)]
    after = datetime.now(UTC)
    for text in texts:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text), text
    moments = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in texts]
    assert before - timedelta(milliseconds=1) <= moments[0]
    assert moments[-1] <= after + timedelta(milliseconds=1)
    assert moments == sorted(moments)


def test_received_at_as_text_is_the_recvtime() -> None:
    for name in sample_names():
        by_moment = normalize_webhook(load(name), received_at=RECEIVED_AT)
        by_text = normalize_webhook(load(name), received_at=RECVTIME)
        assert [e.to_dict() for e in by_text] == [e.to_dict() for e in by_moment], name
        assert {e.recvtime for e in by_text} <= {RECVTIME}, name
