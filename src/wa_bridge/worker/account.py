"""Account notices as rows of ``account_events`` (``wa-bridge account events``).

Meta's template status, quality and category changes, a number's quality and messaging
limit changes, and account updates name no contact: they reach the CRM only where a
mapping rule says so (the shipped mappings say ``none``), but every one is kept here, in
the batch's transaction, for the operators and the alerts. ``account_signals`` (the
latest quality per subject, :mod:`wa_bridge.worker.tracing`) is fed from the same events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import orjson

from wa_bridge.events import CanonicalEvent
from wa_bridge.store.api import AccountEvent, AccountEventScope
from wa_bridge.worker import facts

__all__ = ["account_event_of", "account_events_of"]

_MAX_WORD: Final = 100
_MAX_DETAIL: Final = 2000
# account_update keys shown as they are; the rest of Meta's value goes to ``detail``
_ACCOUNT_KEYS: Final = frozenset({"event", "phone_number"})


def _word(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str) and str(value):
        return str(value)[:_MAX_WORD]
    return None


def _template_label(data: Mapping[str, Any]) -> str | None:
    name, language = _word(data.get("template_name")), _word(data.get("language"))
    return f"{name} ({language})" if name and language else name


def _template(
    change: str, previous: str | None, current: str | None
) -> Callable[[CanonicalEvent], tuple[AccountEventScope, dict[str, Any]]]:
    def read(event: CanonicalEvent) -> tuple[AccountEventScope, dict[str, Any]]:
        data = event.data
        return "template", {
            "subject": _word(data.get("template_id")),
            "label": _template_label(data),
            "change": _word(data.get(change)),
            "previous": _word(data.get(previous)) if previous else None,
            "current": _word(data.get(current)) if current else None,
        }

    return read


def _template_status(event: CanonicalEvent) -> tuple[AccountEventScope, dict[str, Any]]:
    scope, row = _template("event", None, "message_template_category")(event)
    reason = _word(event.data.get("reason"))
    row["detail"] = None if reason in (None, "NONE") else reason
    return scope, row


def _phone_number(event: CanonicalEvent) -> tuple[AccountEventScope, dict[str, Any]]:
    data = event.data
    return "phone_number", {
        "subject": facts.phone_number_id_of(event) or _word(data.get("display_phone_number")),
        "label": _word(data.get("display_phone_number")),
        "change": _word(data.get("event")),
        "previous": _word(data.get("old_limit")),
        "current": _word(data.get("current_limit")),
    }


def _account(event: CanonicalEvent) -> tuple[AccountEventScope, dict[str, Any]]:
    data = event.data
    raw = data.get("raw")
    rest = {k: v for k, v in raw.items() if k not in _ACCOUNT_KEYS} if isinstance(raw, dict) else {}
    detail = orjson.dumps(rest, option=orjson.OPT_SORT_KEYS).decode() if rest else None
    return "account", {
        "subject": event.wabaid or facts.business_of(event),
        "label": _word(data.get("phone_number")),
        "change": _word(data.get("event")),
        "detail": detail[:_MAX_DETAIL] if detail else None,
    }


_READERS: Final[
    Mapping[str, Callable[[CanonicalEvent], tuple[AccountEventScope, dict[str, Any]]]]
] = {
    "whatsapp.template.status": _template_status,
    "whatsapp.template.quality": _template(
        "new_quality_score", "previous_quality_score", "new_quality_score"
    ),
    "whatsapp.template.category": _template("new_category", "previous_category", "new_category"),
    "whatsapp.phone_number.quality": _phone_number,
    "whatsapp.account.update": _account,
}


def account_event_of(event: CanonicalEvent) -> AccountEvent | None:
    """The ``account_events`` row of an account notice; None for any other event."""
    read = _READERS.get(event.type)
    if read is None:
        return None
    scope, row = read(event)
    return AccountEvent(
        event_id=event.id, event_type=event.type, scope=scope, at=facts.event_time(event), **row
    )


def account_events_of(events: Sequence[CanonicalEvent]) -> list[AccountEvent]:
    return [found for event in events if (found := account_event_of(event)) is not None]
