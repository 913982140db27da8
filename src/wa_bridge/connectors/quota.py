"""What a CRM's answer says about its quota, and the rules that fold it into the shared view.

Pure: no I/O. A CRM's :class:`~wa_bridge.connectors.http.ErrorDialect` reads each answer
(status, headers, error body) into a :class:`QuotaReading`; the gate
(:mod:`wa_bridge.connectors.gate`) folds readings into a
:class:`~wa_bridge.store.crm_quota.CrmQuota` with :func:`fold`, merges its view with other
workers' with :func:`combine`, and asks :func:`blocked_for_s` and :func:`paused_until`
before each request.

- A wait the CRM asked for (``Retry-After``) or a short window used up (HubSpot's ten
  seconds with nothing remaining) moves ``blocked_until`` forward, never back.
- A daily budget seen at zero (or refused as spent) pauses every request until
  ``resets_at``: midnight in the account's time zone where the CRM resets daily, else a
  probe interval later (Salesforce's allocation is a rolling 24 hours).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import httpx

from wa_bridge.store.crm_quota import CrmQuota

__all__ = [
    "NOTHING",
    "DailyReset",
    "QuotaReading",
    "QuotaWindow",
    "blocked_for_s",
    "combine",
    "fold",
    "is_material",
    "next_midnight",
    "parse_retry_after",
    "paused_until",
    "standard_reading",
]

# The windows a CRM reports what is left of (the gauge's ``window`` label).
QuotaWindow = Literal["daily", "interval", "secondly"]
# How a CRM's daily budget comes back: at midnight (account time zone) or gradually.
DailyReset = Literal["midnight", "rolling"]
# A daily figure this much older than the last write is written again even if unchanged
# by a whole percent, so a dashboard reading the table is never far behind.
DAILY_WRITE_EVERY_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class QuotaReading:
    """What one answer says about the CRM's quota (all optional)."""

    wait_s: float | None = None  # the CRM asked for this wait (Retry-After, its own header)
    window_wait_s: float | None = None  # a short window is used up: nothing until it passes
    daily_remaining: int | None = None
    daily_limit: int | None = None
    daily_spent: bool = False  # the answer refuses the request: the daily budget is spent
    remaining: Mapping[QuotaWindow, int] = field(default_factory=dict)  # for the gauge

    @property
    def says_anything(self) -> bool:
        return bool(
            self.wait_s is not None
            or self.window_wait_s is not None
            or self.daily_remaining is not None
            or self.daily_spent
            or self.remaining
        )


NOTHING: Final = QuotaReading()


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date), else None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def standard_reading(status: int, headers: httpx.Headers, body: Any) -> QuotaReading:
    """HTTP's own signal: ``Retry-After`` on a 429 or a 503."""
    if status in (429, 503):
        return QuotaReading(wait_s=parse_retry_after(headers.get("Retry-After")))
    return NOTHING


def next_midnight(now: datetime, time_zone: str) -> datetime:
    """The next midnight after ``now`` in ``time_zone``, as an aware UTC datetime."""
    zone = ZoneInfo(time_zone)
    local = now.astimezone(zone)
    tomorrow = (local + timedelta(days=1)).date()
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=zone)
    return midnight.astimezone(now.tzinfo)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def fold(
    state: CrmQuota, reading: QuotaReading, *, now: datetime, resets_at: datetime | None
) -> CrmQuota:
    """``state`` after ``reading`` seen at ``now``; ``resets_at`` is when a spent daily
    budget comes back (used only when the reading says it is spent or at zero)."""
    blocked = state.blocked_until
    for wait_s in (reading.wait_s, reading.window_wait_s):
        if wait_s is not None and wait_s > 0:
            blocked = _later(blocked, now + timedelta(seconds=wait_s))
    if reading.daily_remaining is None and not reading.daily_spent:
        return replace(state, blocked_until=blocked)
    remaining = 0 if reading.daily_spent else reading.daily_remaining
    return CrmQuota(
        blocked_until=blocked,
        daily_remaining=remaining,
        daily_limit=reading.daily_limit or state.daily_limit,
        resets_at=resets_at if remaining is not None and remaining <= 0 else None,
        updated_at=now,
    )


def combine(stored: CrmQuota, mine: CrmQuota) -> CrmQuota:
    """Two views of one CRM as one: the later block; the daily figures seen last."""
    blocked = _later(stored.blocked_until, mine.blocked_until)
    daily = mine
    if not mine.has_daily or (
        stored.has_daily
        and stored.updated_at is not None
        and mine.updated_at is not None
        and stored.updated_at > mine.updated_at
    ):
        daily = stored
    return replace(daily, blocked_until=blocked)


def paused_until(state: CrmQuota, now: datetime) -> datetime | None:
    """When a spent daily budget is back (None: it is not spent, or it is back)."""
    spent = state.daily_remaining is not None and state.daily_remaining <= 0
    if spent and state.resets_at is not None and state.resets_at > now:
        return state.resets_at
    return None


def blocked_for_s(state: CrmQuota, now: datetime) -> float:
    """Seconds until requests may go again (0: now)."""
    if state.blocked_until is None:
        return 0.0
    return max(0.0, (state.blocked_until - now).total_seconds())


def is_material(before: CrmQuota, after: CrmQuota) -> bool:
    """Whether ``after`` is worth a database write over ``before`` (what was last read
    or written): a later block, a pause starting or ending, a new daily limit, or the
    daily budget moved by a percent (or seen again a minute later)."""
    if after.blocked_until is not None and (
        before.blocked_until is None or after.blocked_until > before.blocked_until
    ):
        return True
    if (after.resets_at, after.daily_limit) != (before.resets_at, before.daily_limit):
        return True
    if after.daily_remaining is None:
        return False
    if before.daily_remaining is None:
        return True
    step = max(1, (after.daily_limit or 0) // 100)
    if abs(after.daily_remaining - before.daily_remaining) >= step:
        return True
    if after.updated_at is None or before.updated_at is None:
        return False
    return after.daily_remaining != before.daily_remaining and (
        (after.updated_at - before.updated_at).total_seconds() >= DAILY_WRITE_EVERY_S
    )
