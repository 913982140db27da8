"""What Meta's webhooks may carry, the store keeps: ids at the most the receiver takes,
texts longer than any column, through the worker, on PostgreSQL.

Meta's ids are short in practice (a wamid ~60 characters, the others ~20) but bounded by
no spec. An item with an id longer than the store keeps is set aside as a
``whatsapp.unknown`` event saying why (``wa_bridge.normalize.bounds``); free texts (a
profile name, a referral's fields, a status' error) are cut to what the shared mapping
takes, the whole item staying in ``data.raw``. These tests post ids at their limit and
texts past every limit and read back what the store and the SQL CRM kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from wa_bridge.normalize import normalize_webhook
from wa_bridge.normalize.bounds import META_ID_LIMITS, TEXT_LIMITS, without_nul
from wa_bridge.store import open_store
from wa_bridge.store.tables import (
    account_events,
    account_signals,
    cases,
    crm_cases,
    crm_contacts,
    crm_notes,
    dead_letters,
    event_traces,
    identities,
    message_statuses,
    processed_events,
)

from .test_edge_fits import Worker, longest

T0 = datetime(2026, 6, 11, 15, 0, tzinfo=UTC)
WA_ID = "5215550001234"
LONG = 5000  # longer than any bounded column


def ids() -> dict[str, str]:
    """Every Meta id at the most the receiver takes."""
    return {
        "waba": "3" * META_ID_LIMITS["waba_id"],
        "pnid": "4" * META_ID_LIMITS["phone_number_id"],
        "user_id": "MX." + "7" * (META_ID_LIMITS["user_id"] - 3),
        "parent": "MX.ENT." + "8" * (META_ID_LIMITS["parent_user_id"] - 7),
        "username": longest(64, "@"),  # the shared mapping's username
        "media": "9" * META_ID_LIMITS["media_id"],
    }


def wamid(n: int) -> str:
    return longest(META_ID_LIMITS["message_id"], f"wamid.{n}.")


def envelope(value: dict[str, Any], **changes: str) -> dict[str, Any]:
    i = {**ids(), **changes}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "525550000001", "phone_number_id": i["pnid"]},
        **value,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": i["waba"], "changes": [{"value": value, "field": "messages"}]}],
    }


def card() -> dict[str, Any]:
    i = ids()
    return {
        "profile": {"name": longest(LONG), "username": i["username"]},
        "wa_id": WA_ID,
        "user_id": i["user_id"],
        "parent_user_id": i["parent"],
    }


def ad_message(n: int) -> dict[str, Any]:
    """A customer's first message after a click on an ad whose fields are all too long."""
    utm = longest(LONG)
    i = ids()
    return envelope(
        {
            "contacts": [card()],
            "messages": [
                {
                    "from": WA_ID,
                    "from_user_id": i["user_id"],
                    "from_parent_user_id": i["parent"],
                    "id": wamid(n),
                    "timestamp": str(int(T0.timestamp()) + n),
                    "type": "image",
                    "image": {"id": i["media"], "mime_type": "image/jpeg", "caption": utm},
                    "referral": {
                        "source_url": f"https://shop.example/x?utm_source={utm}&utm_medium={utm}"
                        f"&utm_campaign={utm}&pad={'p' * LONG}",
                        "source_id": "1" * LONG,
                        "source_type": "ad" + "d" * LONG,
                        "headline": utm,
                        "body": utm,
                        "media_type": "image",
                        "ctwa_clid": "A" * TEXT_LIMITS["ctwa_clid"],  # kept whole
                    },
                }
            ],
        }
    )


def failed_status(n: int) -> dict[str, Any]:
    i = ids()
    error = {
        "code": 131049,
        "title": longest(LONG),
        "message": longest(LONG),
        "error_data": {"details": longest(LONG)},
    }
    status = {
        "id": wamid(n),
        "status": "failed",
        "timestamp": str(int(T0.timestamp()) + n),
        "recipient_id": WA_ID,
        "recipient_user_id": i["user_id"],
        "errors": [error],
    }
    return envelope({"contacts": [card()], "statuses": [status]})


@pytest.mark.postgres
async def test_meta_ids_at_their_limit_and_overlong_texts_are_kept_on_postgresql(
    pg_url: str,
) -> None:
    store = await open_store(pg_url)
    try:
        worker = Worker(store)
        events = [
            *normalize_webhook(ad_message(1), received_at=T0),
            *normalize_webhook(failed_status(2), received_at=T0),
        ]
        for event in events:
            await worker.apply(event)
        assert await worker.rows(dead_letters) == []
        i = ids()
        [case] = await worker.rows(cases)
        assert case["business_number"] == i["pnid"]
        assert {i["user_id"], i["parent"]} <= {r["value"] for r in await worker.rows(identities)}
        [contact] = await worker.rows(crm_contacts)
        assert (contact["bsuid"], contact["parent_bsuid"]) == (i["user_id"], i["parent"])
        assert contact["username"] == i["username"]
        assert contact["name"] == longest(LONG)[:256]  # cut to the mapping's 256
        [crm_case] = await worker.rows(crm_cases)
        assert crm_case["ctwa_clid"] == "A" * 512
        assert crm_case["ad_id"] is None  # an id too long for the mapping: left out
        assert crm_case["channel"] == "whatsapp"  # (so is the source type)
        assert len(crm_case["source_url"]) == 2048  # texts: cut to the mapping's length
        assert crm_case["utm_source"] == longest(LONG)[:200]
        assert crm_case["utm_campaign"] == longest(LONG)[:200]
        notes = {r["note_key"]: r for r in await worker.rows(crm_notes)}
        assert notes[wamid(1)]["media_id"] == i["media"]
        assert notes[wamid(2)]["status"] == "failed"
        assert notes[wamid(2)]["status_error"].startswith("131049: " + longest(LONG)[:100])
        assert wamid(2) in {r["message_id"] for r in await worker.rows(message_statuses)}
        event_ids = {e.id for e in events}
        assert event_ids <= {r["event_id"] for r in await worker.rows(processed_events)}
        assert event_ids <= {r["event_id"] for r in await worker.rows(event_traces)}
    finally:
        await store.aclose()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("entry[].id (the WABA id)", {"waba": "3" * 129}),
        ("metadata.phone_number_id", {"pnid": "4" * 129}),
    ],
)
async def test_an_item_with_a_longer_business_id_is_set_aside_and_traced(
    pg_url: str, field: str, changes: dict[str, str]
) -> None:
    body = envelope(
        {
            "contacts": [card()],
            "messages": [ad_message(1)["entry"][0]["changes"][0]["value"]["messages"][0]],
        },
        **changes,
    )
    [event] = normalize_webhook(body, received_at=T0)
    assert event.type == "whatsapp.unknown"
    assert event.data["refused"].startswith(f"whatsapp.message.received: {field} has 129")
    store = await open_store(pg_url)
    try:
        await Worker(store).apply(event, "noop")
        [trace] = await Worker(store).rows(event_traces)
        assert trace["event_id"] == event.id
    finally:
        await store.aclose()


def account_notice(field: str, value: dict[str, Any]) -> dict[str, Any]:
    entry = {"id": ids()["waba"], "time": int(T0.timestamp()), "changes": []}
    entry["changes"] = [{"value": value, "field": field}]
    return {"object": "whatsapp_business_account", "entry": [entry]}


@pytest.mark.postgres
async def test_account_notices_with_ids_at_their_limit_and_overlong_names_are_kept(
    pg_url: str,
) -> None:
    """A template's name and language and a number's display form are Meta's texts: the
    account tables cut them (by design, as account events always did); the ids fit."""
    template_id = "5" * META_ID_LIMITS["template_id"]
    quality = {
        "previous_quality_score": "YELLOW",
        "new_quality_score": "RED",
        "message_template_id": template_id,
        "message_template_name": longest(LONG),
        "message_template_language": longest(LONG),
    }
    number = {
        "display_phone_number": "5" * LONG,
        "event": "FLAGGED",
        "current_limit": "TIER_250",
    }
    bodies = [
        account_notice("message_template_quality_update", quality),
        account_notice("phone_number_quality_update", number),
    ]
    store = await open_store(pg_url)
    try:
        worker = Worker(store)
        for body in bodies:
            for event in normalize_webhook(body, received_at=T0):
                await worker.apply(event, "noop")  # the mapping: none (kept in our tables)
        assert await worker.rows(dead_letters) == []
        signals = {r["scope"]: r for r in await worker.rows(account_signals)}
        assert signals["template"]["subject"] == template_id
        assert signals["template"]["label"] == longest(LONG)[:200]
        assert signals["template"]["quality"] == "RED"
        assert signals["phone_number"]["subject"] == "5" * 200
        notices = {r["scope"]: r for r in await worker.rows(account_events)}
        assert notices["template"]["subject"] == template_id[:100]  # account events' cut
        assert notices["template"]["label"].startswith(longest(LONG)[:100])
    finally:
        await store.aclose()


@pytest.mark.postgres
async def test_a_webhook_with_nul_characters_is_kept_with_replacement_marks(
    pg_url: str,
) -> None:
    """No PostgreSQL text or JSON column stores U+0000: the receiver makes each one U+FFFD
    (``without_nul``) before normalizing, so the customer's message is kept."""
    body = ad_message(3)
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["profile"]["name"] = "Ana\x00"
    message = value["messages"][0]
    message["image"]["caption"] = "hola\x00mundo"
    message["referral"]["headline"] = "oferta\x00"
    message["referral"]["source_url"] = "https://shop.example/?utm_source=fb\x00x"
    store = await open_store(pg_url)
    try:
        worker = Worker(store)
        for event in normalize_webhook(without_nul(body), received_at=T0):
            await worker.apply(event)
        assert await worker.rows(dead_letters) == []
        [contact] = await worker.rows(crm_contacts)
        assert contact["name"] == "Ana\ufffd"
        [note] = await worker.rows(crm_notes)
        assert note["body"] is not None and "hola\ufffdmundo" in note["body"]
        [crm_case] = await worker.rows(crm_cases)
        assert crm_case["utm_source"] == "fb\ufffdx"
        [case] = await worker.rows(cases)
        assert case["attribution"]["headline"] == "oferta\ufffd"
    finally:
        await store.aclose()
