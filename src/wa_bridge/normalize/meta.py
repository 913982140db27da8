"""The Meta webhook envelope (``object`` / ``entry[]`` / ``changes[]``) and its primitives.

Hot path: plain dict/list access with isinstance checks, no model building. The envelope is
checked strictly (a bad one raises :class:`NotAWebhook`, which the receiver turns into a 400);
everything inside a well-formed ``value`` is read leniently by ``to_events``.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

import orjson

from wa_bridge.errors import InvalidEvent, NotAWebhook

__all__ = [
    "OBJECT_WABA",
    "Change",
    "NotAWebhook",
    "as_str",
    "epoch_of",
    "item_hash",
    "iter_changes",
    "rfc3339",
    "rfc3339_from_epoch",
    "rfc3339_now",
]

OBJECT_WABA: Final = "whatsapp_business_account"
_MAX_EPOCH: Final = 253402300799  # 9999-12-31T23:59:59Z
_REPR_CHARS: Final = 60


@dataclass(frozen=True, slots=True)
class Change:
    """One ``entry[].changes[]`` item with the entry attributes it needs."""

    entry_id: str | None
    entry_time: int | None
    field: str
    value: dict[str, Any]


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_CHARS else text[:_REPR_CHARS] + "…"


def _objects(
    items: object, path: str, *, name: str | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each item of ``items`` (found at ``path``) with its index; NotAWebhook unless it is
    a list of objects."""
    if not isinstance(items, list):
        raise NotAWebhook(f"{name or path} must be a list of objects")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise NotAWebhook(f"{path}[{i}] must be an object")
        yield i, item


def iter_changes(payload: object) -> Iterator[Change]:
    """Yield the changes in payload order; raise NotAWebhook on a malformed envelope."""
    if not isinstance(payload, dict):
        raise NotAWebhook(f"webhook body must be a JSON object, got {type(payload).__name__}")
    obj = payload.get("object")
    if obj != OBJECT_WABA:
        raise NotAWebhook(f"'object' must be {OBJECT_WABA!r}, got {_short(obj)}")
    for i, entry in _objects(payload.get("entry"), "entry", name="'entry'"):
        changes = entry.get("changes")
        raw_id = entry.get("id")
        entry_id = raw_id if isinstance(raw_id, str) else None
        if isinstance(raw_id, int) and not isinstance(raw_id, bool):
            entry_id = str(raw_id)
        entry_time = epoch_of(entry.get("time"))
        for j, change in _objects(changes, f"entry[{i}].changes"):
            field = change.get("field")
            if not isinstance(field, str):
                raise NotAWebhook(f"entry[{i}].changes[{j}].field must be a string")
            value = change.get("value")
            if not isinstance(value, dict):
                raise NotAWebhook(f"entry[{i}].changes[{j}].value must be an object")
            yield Change(entry_id, entry_time, field, value)


def as_str(value: object) -> str | None:
    """``value`` if it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def epoch_of(value: object) -> int | None:
    """Epoch seconds from Meta's string ("1781100000") or number form; None if not one."""
    if isinstance(value, str):
        if not value.isdigit() or len(value) > 12:
            return None
        try:
            secs = int(value)
        except ValueError:  # unicode digits int() refuses
            return None
    elif isinstance(value, bool):
        return None
    elif isinstance(value, int):
        secs = value
    elif isinstance(value, float) and math.isfinite(value):
        secs = int(value)
    else:
        return None
    return secs if 0 <= secs <= _MAX_EPOCH else None


@lru_cache(maxsize=8192)
def rfc3339_from_epoch(secs: int) -> str:
    """``2026-06-10T12:00:00Z`` for an epoch in range."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secs))


def rfc3339(moment: datetime) -> str:
    """RFC 3339 UTC with a ``Z``; a naive datetime is taken as UTC."""
    if moment.tzinfo is not UTC:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat()[:-6] + "Z"  # a UTC isoformat ends with "+00:00"


# The last whole second rfc3339_now formatted: (epoch second, "YYYY-MM-DDTHH:MM:SS.").
_second: tuple[int, str] = (-1, "")


def rfc3339_now() -> str:
    """Now as RFC 3339 UTC with microseconds (``2026-06-10T12:00:00.123456Z``): the
    receiver's ``recvtime``, about half the cost of formatting ``datetime.now(UTC)``.

    The date and time of day are formatted once per second; each call adds only the
    microseconds.
    """
    global _second
    secs, nanos = divmod(time.time_ns(), 1_000_000_000)
    if secs != _second[0]:
        _second = (secs, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(secs)))
    return f"{_second[1]}{nanos // 1000:06d}Z"


def item_hash(field: str, entry_id: str | None, item: object) -> str:
    """A stable id part for items without a natural id: sha256 of canonical JSON, hex[:32]."""
    try:
        blob = orjson.dumps([field, entry_id, item], option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidEvent(f"field {field!r}: item is not JSON-serializable ({exc})") from exc
    return hashlib.sha256(blob).hexdigest()[:32]
