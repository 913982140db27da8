"""A conversation's events as Meta and the agents' inbox send them, at chosen times.

Webhook bodies (a customer's message, a click-to-WhatsApp ad's first message, a status of
a message the business sent through the API, an echo from the WhatsApp Business app) and
inbox posts (``POST /inbox/events`` bodies), for the conversation tests: the worker's
(normalized here with the real normalizers) and the end-to-end scenario (posted).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from wa_bridge.events import CanonicalEvent
from wa_bridge.normalize import normalize_webhook
from wa_bridge.normalize.inbox import normalize_inbox_event

PNID = "400000000000001"
DISPLAY = "525550000001"
WABA = "300000000000001"
T0 = datetime(2026, 6, 11, 15, 0, tzinfo=UTC)
AD_URL = "https://shop.example/sofas?utm_source=facebook&utm_medium=ctwa&utm_campaign=invierno26"
CTWA_CLID = "ARAtestCtwaClid0001"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _epoch(moment: datetime) -> str:
    return str(int(moment.timestamp()))


def _envelope(field: str, value: dict[str, Any]) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PNID},
        **value,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA, "changes": [{"value": value, "field": field}]}],
    }


def wamid(wa_id: str, n: int) -> str:
    return f"wamid.CONV{wa_id}N{n:04d}"


def customer_text(
    wa_id: str, n: int, when: datetime, body: str, *, name: str = "Renata", ad: bool = False
) -> dict[str, Any]:
    """Message ``n`` from the customer ``wa_id``; with ``ad``, the first message after a
    click on a click-to-WhatsApp ad (its referral, UTMs in the ad's URL)."""
    message: dict[str, Any] = {
        "from": wa_id,
        "id": wamid(wa_id, n),
        "timestamp": _epoch(when),
        "type": "text",
        "text": {"body": body},
    }
    if ad:
        message["referral"] = {
            "source_url": AD_URL,
            "source_id": "120000000000000001",
            "source_type": "ad",
            "headline": "Sofás 30% off",
            "body": "Solo esta semana",
            "media_type": "image",
            "image_url": "https://scontent.example/ad.jpg",
            "ctwa_clid": CTWA_CLID,
        }
    card = {"profile": {"name": name}, "wa_id": wa_id}
    return _envelope("messages", {"contacts": [card], "messages": [message]})


def business_status(wa_id: str, n: int, status: str, when: datetime) -> dict[str, Any]:
    """The status of message ``n`` the business sent ``wa_id`` through the API."""
    item = {
        "id": wamid(wa_id, n),
        "status": status,
        "timestamp": _epoch(when),
        "recipient_id": wa_id,
    }
    return _envelope("messages", {"statuses": [item]})


def echo(wa_id: str, n: int, when: datetime, body: str) -> dict[str, Any]:
    """Message ``n`` the business sent ``wa_id`` from the WhatsApp Business app."""
    item = {
        "from": DISPLAY,
        "to": wa_id,
        "id": wamid(wa_id, n),
        "timestamp": _epoch(when),
        "type": "text",
        "text": {"body": body},
    }
    return _envelope("smb_message_echoes", {"message_echoes": [item]})


def inbox_post(
    kind: str, post_id: str, when: datetime, wa_id: str, **fields: Any
) -> dict[str, Any]:
    """A ``POST /inbox/events`` body for the conversation with ``wa_id``."""
    return {
        "type": kind,
        "id": post_id,
        "time": when.isoformat().replace("+00:00", "Z"),
        "phone_number_id": PNID,
        "waba_id": WABA,
        "contact": {"wa_id": wa_id},
        **fields,
    }


def webhook_events(body: dict[str, Any], received: datetime | None = None) -> list[CanonicalEvent]:
    return normalize_webhook(body, received_at=received or T0)


def inbox_event(body: dict[str, Any]) -> CanonicalEvent:
    return normalize_inbox_event(body, received_at=T0)


def consent_post(
    post_id: str, when: datetime, wa_id: str, *, status: str = "opt_in", **fields: Any
) -> dict[str, Any]:
    """A ``POST /consents`` body: ``wa_id``'s consent captured on a web form."""
    return {
        "id": post_id,
        "contact": {"wa_id": wa_id},
        "status": status,
        "captured_via": "web_form",
        "purpose": "marketing",
        "text_shown": "Acepto recibir ofertas por WhatsApp. Puedo darme de baja con BAJA.",
        "time": when.isoformat().replace("+00:00", "Z"),
        "source": "landing/invierno26",
        "phone_number_id": PNID,
        "waba_id": WABA,
        **fields,
    }
