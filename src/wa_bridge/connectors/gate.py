"""One gate per CRM instance: every request waits for it, every answer feeds it.

A :class:`CrmGate` holds this process's view of one CRM's quota (a
:class:`~wa_bridge.store.crm_quota.CrmQuota`) and shares it with every other worker
process through the state database (table ``crm_quota``):

- before a request (:meth:`CrmGate.admit`): the view is refreshed from the database (at
  most every ``refresh_s``; 0, the default, reads the one row before each request, with
  concurrent requests sharing one read), then the request waits until ``blocked_until``
  (on the injected Clock); after such a wait one request goes first and the others wait
  for its answer, plus ``SETTLE_S`` and a fresh read of the shared row (no burst into a
  CRM that may still be limiting, whichever process it told so). While the daily budget
  left is known and no larger than this process's requests in flight, a request waits
  for one of their answers (the last calls of a budget go one by one, so none is sent
  that the budget cannot pay for; a budget that comes back at midnight only falls until
  then, so an answer observed late never raises the day's figure). A spent daily budget,
  or a wait longer than ``max_wait_s``, raises :class:`~wa_bridge.errors.CrmQuotaExhausted`
  instead: nothing is sent, and the worker pauses consumption until ``resume_at`` (see
  that class for the contract).
- after an answer (:meth:`CrmGate.observe`): the CRM's dialect reads it
  (``Retry-After``, rate-limit headers, the daily budget) into a
  :class:`~wa_bridge.connectors.quota.QuotaReading`; the view is updated, the gauge
  ``wa_bridge_crm_quota_remaining{crm,window}`` set, and the database written when the
  change is material (a later block, a pause, a percent of the daily budget). An answer
  that refuses a request because the daily budget is spent raises CrmQuotaExhausted.

:class:`GatedTransport` puts a gate under an httpx client, so every request the client
sends (a connector's writes, a retried request after a token refresh, setup's requests,
replays) goes through it, and a Retry-After one worker got binds every later request of
every worker, whatever retry path it is on.

The database is advisory: when it cannot be reached (StoreUnavailable) the gate keeps its
own view, logs, and writes again on the next material change.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol
from urllib.parse import urlsplit

import httpx
import orjson

from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.connectors.quota import (
    DailyReset,
    QuotaReading,
    blocked_for_s,
    combine,
    fold,
    is_material,
    next_midnight,
    paused_until,
    standard_reading,
)
from wa_bridge.errors import CrmQuotaExhausted, StoreUnavailable
from wa_bridge.log import get_logger
from wa_bridge.metrics import CRM_QUOTA_REMAINING
from wa_bridge.store.crm_quota import CrmQuota, quota_store_for

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from wa_bridge.settings import Settings

__all__ = [
    "MAX_WAIT_IN_PLACE_S",
    "SETTLE_S",
    "STORE_RETRY_S",
    "CrmGate",
    "GatedTransport",
    "QuotaStore",
    "Reader",
    "gate_for",
    "quota_key",
]

# A request waits for the gate in place at most this long; a longer block pauses the
# worker instead (CrmQuotaExhausted), so no batch holds its transaction for minutes.
MAX_WAIT_IN_PLACE_S: Final = 60.0

# After a wait, the first request's success is trusted once this long has passed and the
# shared row was read again: other processes' first requests went at the same moment, and
# one of them may have met another 429 that is on its way into the database.
SETTLE_S: Final = 0.1

# After a failed write (the database down, or SQLite's one write lock held by a batch), the
# daily figures are written again no sooner than this; a new block or pause is at once.
STORE_RETRY_S: Final = 5.0

Reader = Callable[[int, httpx.Headers, Any], QuotaReading]

log = get_logger("crm_gate")


class QuotaStore(Protocol):
    """Where the shared quota rows live (``wa_bridge.store.crm_quota.SqlQuotaStore``)."""

    async def load(self, crm: str) -> CrmQuota | None: ...

    async def merge(
        self,
        crm: str,
        change: CrmQuota,
        combine: Callable[[CrmQuota, CrmQuota], CrmQuota],
        *,
        now: datetime,
    ) -> CrmQuota: ...

    async def extend_block(self, crm: str, until: datetime, *, now: datetime) -> None: ...

    async def aclose(self) -> None: ...


class CrmGate:
    """The gate of the CRM instance ``crm`` (see the module docstring).

    ``read`` is the CRM's quota dialect; ``daily_reset`` says when its spent daily budget
    comes back (``midnight`` in ``reset_tz``, or ``rolling``: retried every ``probe_s``).
    Without a ``store`` the view is this process's alone.
    """

    def __init__(
        self,
        crm: str,
        *,
        vendor: str,
        read: Reader = standard_reading,
        daily_reset: DailyReset = "rolling",
        store: QuotaStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
        reset_tz: str = "UTC",
        refresh_s: float = 0.0,
        probe_s: float = 300.0,
        max_wait_s: float = MAX_WAIT_IN_PLACE_S,
    ) -> None:
        self.crm = crm
        self._vendor = vendor
        self._read = read
        self._daily_reset = daily_reset
        self._store = store
        self._clock = clock
        self._reset_tz = reset_tz
        self._refresh_s = refresh_s
        self._probe_s = probe_s
        self._max_wait_s = max_wait_s
        self._state = CrmQuota()
        self._stored = CrmQuota()  # what the database held when last read or written
        self._loads_started = 0
        self._loaded_at: float | None = None  # monotonic time of the last finished read
        self._load_lock = asyncio.Lock()
        self._save_lock = asyncio.Lock()
        self._store_failing = False
        self._recovering = False  # a wait was asked for and no answer since said "go"
        self._probe: asyncio.Event | None = None  # set when the probe's answer is in
        self._settle_at: float | None = None  # monotonic: the probe went through; go then
        self._write_again_at: float | None = None  # monotonic: after a failed write
        self._in_flight = 0  # requests admitted and not yet released
        self._answered = asyncio.Event()  # set (and replaced) whenever one is released

    @property
    def state(self) -> CrmQuota:
        """This process's current view."""
        return self._state

    # --- before a request -------------------------------------------------------------
    async def admit(self) -> bool:
        """Return when a request to the CRM may go; may wait (on the clock) up to
        ``max_wait_s``. Raises CrmQuotaExhausted (nothing sent) when the daily budget is
        spent or the wait is longer; StoreUnavailable never (the view is kept).

        After a wait, one request goes first (the probe: True is returned) and the others
        wait for its answer, so a CRM still limiting gets one request, not a burst. The
        caller must call :meth:`release` with the returned value once the answer was
        observed (or the request failed).
        """
        while True:
            await self._refresh()
            now = self._clock.now()
            resume_at = paused_until(self._state, now)
            if resume_at is not None:
                raise self._exhausted(resume_at, now, "daily")
            wait_s = blocked_for_s(self._state, now)
            if wait_s > self._max_wait_s:
                assert self._state.blocked_until is not None
                raise self._exhausted(self._state.blocked_until, now, "wait")
            if wait_s > 0:
                await self._clock.sleep(wait_s)
                continue
            if self._budget_taken():
                await self._answered.wait()  # its answer tells what is left
                continue
            if not self._recovering:
                return self._admitted(probe=False)
            if self._probe is not None:
                await self._probe.wait()  # its answer decides
            elif self._settle_at is None:
                self._probe = asyncio.Event()
                return self._admitted(probe=True)
            elif (settle_s := self._settle_at - self._clock.monotonic()) > 0:
                await self._clock.sleep(settle_s)  # then read again: did others meet a 429?
            else:
                self._recovering, self._settle_at = False, None
                return self._admitted(probe=False)

    def _budget_taken(self) -> bool:
        """Whether the requests in flight may already use up the daily budget left."""
        left = self._state.daily_remaining
        if left is None or left <= 0 or self._in_flight == 0:
            return False  # unknown, or spent and back at its reset (admit raised otherwise)
        return left <= self._in_flight

    def _admitted(self, *, probe: bool) -> bool:
        self._in_flight += 1
        return probe

    def release(self, probe: bool) -> None:
        """The request :meth:`admit` let through is done; a probe lets the others go on."""
        self._in_flight -= 1
        self._answered.set()
        self._answered = asyncio.Event()
        if probe and self._probe is not None:
            self._probe.set()
            self._probe = None

    async def _refresh(self) -> None:
        """Read the shared row unless a read that began after this call's start (or, with
        ``refresh_s``, one recent enough) already did."""
        if self._store is None:
            return
        ticket = self._loads_started
        async with self._load_lock:
            if self._loads_started > ticket:
                return  # a read began after we arrived and has finished: it is fresh
            loaded_at = self._loaded_at
            if (
                self._refresh_s > 0
                and loaded_at is not None
                and self._clock.monotonic() - loaded_at < self._refresh_s
            ):
                return
            self._loads_started += 1
            try:
                row = await self._store.load(self.crm)
            except StoreUnavailable as exc:
                self._store_failed(exc)
                return
            self._loaded_at = self._clock.monotonic()
            self._store_failing = False
            if row is not None:
                before = self._state.blocked_until
                self._stored = row
                self._state = combine(row, self._state)
                later = self._state.blocked_until != before
                if later and blocked_for_s(self._state, self._clock.now()) > 0:
                    self._recovering, self._settle_at = True, None  # another was told to wait
                self._export_daily()

    # --- after an answer --------------------------------------------------------------
    async def observe(self, status: int, headers: httpx.Headers, body: Any) -> None:
        """Fold one answer (``body``: its parsed error body, else None) into the view and
        share it. Raises CrmQuotaExhausted when the answer refused the request because the
        daily budget is spent."""
        reading = self._read(status, headers, body)
        self._track_recovery(status, reading)
        if not reading.says_anything:
            return
        now = self._clock.now()
        before = self._state
        spent_now = reading.daily_spent or reading.daily_remaining == 0
        resets_at = self._resets_at(now) if spent_now else None
        self._state = self._never_higher_today(
            before, fold(before, reading, now=now, resets_at=resets_at), now
        )
        await self._share_block(before, now)
        self._export(reading)
        self._log_change(before, now, reading)
        await self._persist(now, before)
        resume_at = paused_until(self._state, now)
        if reading.daily_spent and status >= 400 and resume_at is not None:
            raise self._exhausted(resume_at, now, "daily")

    def _never_higher_today(self, before: CrmQuota, after: CrmQuota, now: datetime) -> CrmQuota:
        """A budget that comes back at midnight only falls until then: an answer observed
        after a later one (two connections) must not raise it, or a call too many could
        go. A new day, or a new daily limit, is taken as it is."""
        old, new = before.daily_remaining, after.daily_remaining
        if (
            self._daily_reset != "midnight"
            or old is None
            or new is None
            or new <= old
            or before.updated_at is None
            or after.daily_limit != before.daily_limit
            or next_midnight(before.updated_at, self._reset_tz)
            != next_midnight(now, self._reset_tz)
        ):
            return after
        return dataclasses.replace(after, daily_remaining=old, resets_at=before.resets_at)

    def _track_recovery(self, status: int, reading: QuotaReading) -> None:
        """A new wait (re)starts the recovery; the first answer that is no rate limit,
        once the wait is over (not a late answer to an earlier request), starts the
        settle after which everyone goes."""
        if reading.wait_s is not None or reading.window_wait_s is not None:
            self._recovering, self._settle_at = True, None
            return
        is_go = status not in (429, 503) and blocked_for_s(self._state, self._clock.now()) <= 0
        if self._recovering and self._settle_at is None and is_go:
            self._settle_at = self._clock.monotonic() + SETTLE_S

    def _resets_at(self, now: datetime) -> datetime:
        if self._daily_reset == "midnight":
            return next_midnight(now, self._reset_tz)
        return now + timedelta(seconds=self._probe_s)

    async def _persist(self, now: datetime, before: CrmQuota) -> None:
        """Write the view if it changed materially since the database last saw it.
        After a failed write, only a change of this answer's own that others must know at
        once (a new block, a pause) is written before ``STORE_RETRY_S`` has passed."""
        if self._store is None:
            return
        async with self._save_lock:
            if not is_material(self._stored, self._state):
                return
            urgent = self._state.blocked_until != before.blocked_until or (
                paused_until(self._state, now) != paused_until(before, now)
            )
            resume = self._write_again_at
            if not urgent and resume is not None and self._clock.monotonic() < resume:
                return  # the database just failed us: the budget's figures can wait
            try:
                merged = await self._store.merge(self.crm, self._state, combine, now=now)
            except StoreUnavailable as exc:
                self._store_failed(exc)
                self._write_again_at = self._clock.monotonic() + STORE_RETRY_S
                return
            self._store_failing, self._write_again_at = False, None
            self._stored = merged
            self._state = combine(merged, self._state)

    async def _share_block(self, before: CrmQuota, now: datetime) -> None:
        """A later ``blocked_until`` (a Retry-After, a spent window) goes to the shared row
        at once, in one statement, before anything else of this answer: every round trip
        of :meth:`_persist`'s locked merge is time in which another worker may read the
        row, see no block and send. The merge follows only for what else changed (the
        block is then no longer news to the database); if this write failed, the merge
        writes the block too."""
        until, was = self._state.blocked_until, before.blocked_until
        if self._store is None or until is None or (was is not None and until <= was):
            return
        try:
            await self._store.extend_block(self.crm, until, now=now)
        except StoreUnavailable as exc:
            self._store_failed(exc)  # _persist tries again: a new block is urgent
            return
        stored = self._stored.blocked_until
        if stored is None or stored < until:
            self._stored = dataclasses.replace(self._stored, blocked_until=until)

    # --- reporting --------------------------------------------------------------------
    def _export(self, reading: QuotaReading) -> None:
        for window, remaining in reading.remaining.items():
            CRM_QUOTA_REMAINING.labels(crm=self.crm, window=window).set(remaining)
        self._export_daily()

    def _export_daily(self) -> None:
        if self._state.daily_remaining is not None:
            daily = max(0, self._state.daily_remaining)
            CRM_QUOTA_REMAINING.labels(crm=self.crm, window="daily").set(daily)

    def _log_change(self, before: CrmQuota, now: datetime, reading: QuotaReading) -> None:
        if paused_until(self._state, now) is not None and paused_until(before, now) is None:
            log.warning(
                "crm_quota_spent",
                connector=self._vendor,
                crm=self.crm,
                resume_at=_iso(self._state.resets_at),
            )
        elif self._state.blocked_until != before.blocked_until:
            log.info(
                "crm_rate_limited",
                connector=self._vendor,
                crm=self.crm,
                wait_s=round(blocked_for_s(self._state, now), 3),
                asked=reading.wait_s is not None,
            )

    def _store_failed(self, exc: StoreUnavailable) -> None:
        if not self._store_failing:
            log.warning("crm_quota_store_failed", crm=self.crm, error=str(exc))
        self._store_failing = True

    def _exhausted(
        self, resume_at: datetime, now: datetime, why: Literal["daily", "wait"]
    ) -> CrmQuotaExhausted:
        when = _iso(resume_at)
        if why == "daily":
            text = f"the CRM's daily API budget is spent; requests resume at {when}"
        else:
            text = f"the CRM asked for a wait until {when}, longer than a request waits"
        return CrmQuotaExhausted(
            f"{self._vendor}: {text} (events wait in Kafka)",
            resume_at=resume_at,
            retry_after_s=(resume_at - now).total_seconds(),
        )

    async def aclose(self) -> None:
        if self._store is not None:
            await self._store.aclose()


def _iso(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when is not None else "-"


class GatedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends each request through ``gate`` (see the module doc).

    Error answers (status ≥ 400) are read here so the gate sees their body; the caller
    gets the same, already read, response. Closing the transport closes the gate.
    """

    def __init__(self, gate: CrmGate, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.gate = gate
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        probe = await self.gate.admit()
        try:
            response = await self._inner.handle_async_request(request)
            try:
                body = None
                if response.status_code >= 400:
                    body = _json(await response.aread())
                await self.gate.observe(response.status_code, response.headers, body)
            except BaseException:
                await response.aclose()
                raise
        finally:
            self.gate.release(probe)
        return response

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            await self.gate.aclose()


def _json(content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


def quota_key(settings: Settings) -> str:
    """The name of the CRM instance whose quota workers share: ``crm_quota_key``, else
    ``<connector>:<host>`` (the API's, else the login site's) and, with OAuth, the client
    id (one OAuth app belongs to one account)."""
    if settings.crm_quota_key:
        return settings.crm_quota_key
    url = settings.crm_base_url or settings.crm_login_url or ""
    key = f"{settings.connector}:{urlsplit(url).netloc or url}"
    if settings.crm_auth != "token" and settings.crm_client_id:
        key += f":{settings.crm_client_id}"
    return key[:200]


def gate_for(
    settings: Settings,
    *,
    vendor: str,
    read: Reader,
    daily_reset: DailyReset,
    engine: AsyncEngine | None,
    clock: Clock = SYSTEM_CLOCK,
) -> CrmGate:
    """The gate of the CRM ``settings`` names, shared through ``engine``'s database (the
    state store; None: this process only)."""
    return CrmGate(
        quota_key(settings),
        vendor=vendor,
        read=read,
        daily_reset=daily_reset,
        store=quota_store_for(engine),
        clock=clock,
        reset_tz=settings.crm_daily_reset_tz,
        refresh_s=settings.crm_quota_refresh_s,
        probe_s=settings.crm_quota_probe_s,
    )
