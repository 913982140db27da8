"""An item with a Meta id longer than the store keeps is set aside as ``whatsapp.unknown``
saying why (the rest of the webhook is kept); free texts are cut.

The PostgreSQL side (ids at their limit and the cut texts kept by the worker) is
``tests/worker/test_edge_fits_meta.py``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from wa_bridge.normalize import normalize_webhook
from wa_bridge.normalize._fast import text_message
from wa_bridge.normalize.bounds import META_ID_LIMITS, TEXT_LIMITS

RECVTIME = "2026-06-10T16:00:05.000000Z"


def text_webhook(**message: Any) -> dict[str, Any]:
    """A customer's one-text webhook (the fast path's shape)."""
    msg = {
        "from": "5215512345678",
        "id": "wamid.HBgNNTIxNTUxMjM0NTY3OBUCABIYFjNFQjBDNzVBMUY2QjJGNTRFRjc5AA==",
        "timestamp": "1781100000",
        "type": "text",
        "text": {"body": "hola"},
        **message,
    }
    card = {"profile": {"name": "Renata"}, "wa_id": "5215512345678"}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "525550000001", "phone_number_id": "106540352242922"},
        "contacts": [card],
        "messages": [msg],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def _value(body: dict[str, Any]) -> dict[str, Any]:
    return body["entry"][0]["changes"][0]["value"]  # type: ignore[no-any-return]


def _set_waba(body: dict[str, Any], v: str) -> None:
    body["entry"][0]["id"] = v


def _set_pnid(body: dict[str, Any], v: str) -> None:
    _value(body)["metadata"]["phone_number_id"] = v


def _set_wamid(body: dict[str, Any], v: str) -> None:
    _value(body)["messages"][0]["id"] = v


def _set_user_id(body: dict[str, Any], v: str) -> None:
    _value(body)["messages"][0]["from_user_id"] = v


def _set_parent(body: dict[str, Any], v: str) -> None:
    _value(body)["messages"][0]["from_parent_user_id"] = v


def _set_media(body: dict[str, Any], v: str) -> None:
    msg = _value(body)["messages"][0]
    msg["type"] = "image"
    msg["image"] = {"id": v, "mime_type": "image/jpeg"}
    del msg["text"]


SETTERS = {
    "waba_id": ("entry[].id (the WABA id)", _set_waba),
    "phone_number_id": ("metadata.phone_number_id", _set_pnid),
    "message_id": ("a message or status id (wamid)", _set_wamid),
    "user_id": ("a user_id (BSUID)", _set_user_id),
    "parent_user_id": ("a parent_user_id", _set_parent),
    "media_id": ("a media id", _set_media),
}


@pytest.mark.parametrize("name", sorted(SETTERS))
def test_an_id_at_its_limit_passes_one_longer_sets_its_item_aside_saying_why(name: str) -> None:
    where, setter = SETTERS[name]
    limit = META_ID_LIMITS[name]
    at_limit = copy.deepcopy(text_webhook())
    setter(at_limit, "1" * limit)
    [kept] = normalize_webhook(at_limit, received_at=RECVTIME)
    assert kept.type == "whatsapp.message.received"
    assert name == "media_id" or text_message(at_limit, RECVTIME) == kept  # the fast path
    over = copy.deepcopy(text_webhook())
    setter(over, "1" * (limit + 1))
    assert text_message(over, RECVTIME) is None  # left to the general path, which sets aside
    [aside] = normalize_webhook(over, received_at=RECVTIME)
    assert aside.type == "whatsapp.unknown" and aside.subject is None
    refused = aside.data["refused"]
    assert refused.startswith(
        f"whatsapp.message.received: {where} has {limit + 1} characters, more than the {limit}"
    )
    assert "1" * 20 not in refused  # never shows the id
    assert aside.data["raw"] == _value(over)["messages"][0]  # the item, whole
    assert len(aside.id) <= 200 and len(aside.source) <= 200
    assert aside.wabaid is None or len(aside.wabaid) <= limit


def test_the_other_items_of_the_webhook_are_kept() -> None:
    body = text_webhook()
    second = copy.deepcopy(_value(body)["messages"][0])
    second["id"] = "wamid." + "A" * 200
    _value(body)["messages"].append(second)
    first, aside = normalize_webhook(body, received_at=RECVTIME)
    assert first.type == "whatsapp.message.received"
    assert aside.type == "whatsapp.unknown"


def test_every_limited_id_is_tested() -> None:
    assert set(SETTERS) == set(META_ID_LIMITS) - {"template_id"}  # (worker/test_edge_fits_meta)


def test_a_template_word_that_makes_the_event_id_too_long_sets_the_item_aside() -> None:
    value = {
        "event": "APPROVED" * 30,
        "message_template_id": 123,
        "message_template_name": "hola",
        "message_template_language": "es",
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "time": 1781100000,
                "changes": [{"value": value, "field": "message_template_status_update"}],
            }
        ],
    }
    [aside] = normalize_webhook(body, received_at=RECVTIME)
    assert aside.type == "whatsapp.unknown"
    assert aside.data["refused"].startswith("whatsapp.template.status: an id in it is too long")


def test_a_long_profile_name_is_cut_alike_on_the_fast_and_the_general_path() -> None:
    body = text_webhook()
    _value(body)["contacts"][0]["profile"]["name"] = "ñ" * 1000
    fast = text_message(body, RECVTIME)
    assert fast is not None  # the fast path took it
    [general] = normalize_webhook(body, received_at=RECVTIME)
    limit = TEXT_LIMITS["profile_name"]
    assert fast.data["contact"]["profile_name"] == "ñ" * limit
    assert general.data["contact"]["profile_name"] == "ñ" * limit


def test_a_status_error_title_and_code_are_cut_the_details_kept() -> None:
    status = {
        "id": "wamid.X",
        "status": "failed",
        "timestamp": "1781100000",
        "recipient_id": "5215512345678",
        "errors": [
            {
                "code": "9" * 100,
                "title": "t" * 1000,
                "message": "m" * 1000,
                "error_data": {"details": "d" * 1000},
            }
        ],
    }
    body = text_webhook()
    value = _value(body)
    del value["messages"], value["contacts"]
    value["statuses"] = [status]
    [event] = normalize_webhook(body, received_at=RECVTIME)
    [error] = event.data["errors"]
    assert error["code"] == "9" * TEXT_LIMITS["error_code"]
    assert error["title"] == "t" * TEXT_LIMITS["error_title"]
    assert (error["message"], error["details"]) == ("m" * 1000, "d" * 1000)
    assert event.data["raw"] == status  # whole


def test_referral_texts_are_cut_and_overlong_ids_left_out() -> None:
    referral = {
        "source_url": "https://shop.example/?utm_source=" + "s" * 300 + "&x=" + "x" * 3000,
        "source_id": "1" * (TEXT_LIMITS["source_id"] + 1),
        "source_type": "ad",
        "headline": "h" * 1000,
        "ctwa_clid": "C" * (TEXT_LIMITS["ctwa_clid"] + 1),
    }
    [event] = normalize_webhook(text_webhook(referral=referral), received_at=RECVTIME)
    touch = event.data["attribution"]
    assert touch["source_url"] == referral["source_url"][: TEXT_LIMITS["source_url"]]
    assert touch["utm_source"] == "s" * TEXT_LIMITS["utm"]
    assert touch["headline"] == "h" * TEXT_LIMITS["headline"]
    assert touch["source_id"] is None and touch["ctwa_clid"] is None
    assert touch["source_type"] == "ad"
    assert event.data["raw"]["referral"] == referral
