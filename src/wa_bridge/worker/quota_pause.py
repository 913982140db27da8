"""The worker's pause while the CRM's budget is spent (``CrmQuotaExhausted``).

A batch that meets a spent budget (the CRM's gate refused to send, or the CRM refused
the request as over its daily allocation) waits here until the gate's ``resume_at``,
then the same batch is applied again (same keys: idempotent). Meanwhile the worker
consumes nothing: its partitions are paused in the consumer (Kafka holds the backlog)
and no other batch starts. Nothing is counted against an event's retries, routed to a
retry topic or dead-lettered for a quota.

While paused: one WARNING ``worker_paused`` (reason ``crm_quota``, ``resume_at``), the
gauge ``wa_bridge_worker_paused_until_seconds`` holds the resume time (Unix seconds;
``/readyz`` answers 503 with the reason meanwhile), and the first batch that goes
through again logs ``worker_resumed``. The budget left is the gate's gauge,
``wa_bridge_crm_quota_remaining{crm,window}``.

A drain before exit (``wa-bridge dev``, whose broker keeps events in memory only) cannot
wait for tomorrow's budget: :meth:`QuotaPause.give_up` ends the pause, and what meets the
spent budget from then on is dead-lettered with its reason (replayable), not lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from wa_bridge.clock import SYSTEM_CLOCK, Clock, sleep_unless_stopped
from wa_bridge.errors import CrmQuotaExhausted
from wa_bridge.log import get_logger
from wa_bridge.metrics import WORKER_PAUSED_UNTIL

__all__ = ["QuotaPause", "quota_pause_reason"]

log = get_logger("worker")

Listener = Callable[[bool], None]


class QuotaPause:
    """Shared by every batch of one worker; listeners hear ``True`` when the pause
    starts and ``False`` when it ends (called on the event loop, must not block)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._until: datetime | None = None
        self._listeners: list[Listener] = []
        self._given_up = asyncio.Event()

    @property
    def is_paused(self) -> bool:
        return self._until is not None

    @property
    def paused_until(self) -> datetime | None:
        return self._until

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def wait_out(self, error: CrmQuotaExhausted) -> None:
        """Pause (if not yet) until ``error.resume_at``; return then (the caller tries
        its batch again). Cancellable like any sleep. After :meth:`give_up`, raises
        ``error`` instead: the caller routes its events by that error's class."""
        if self._given_up.is_set():
            raise error
        resume_at = error.resume_at
        until = self._until
        starting = until is None
        if until is None or resume_at > until:
            self._until = resume_at
            WORKER_PAUSED_UNTIL.set(resume_at.timestamp())
        if starting:
            log.warning(
                "worker_paused",
                reason="crm_quota",
                resume_at=_iso(resume_at),
                detail=str(error),
            )
            self._tell(True)
        wait_s = (resume_at - self._clock.now()).total_seconds()
        await sleep_unless_stopped(self._clock, max(0.0, wait_s), self._given_up)
        if self._given_up.is_set():
            raise error

    def give_up(self) -> None:
        """Stop waiting for the budget (``wa-bridge dev`` draining its in-memory broker
        before it exits): batches waiting now, and every later one that meets the spent
        budget, fail with CrmQuotaExhausted (retry topics, then the dead-letter table:
        ``wa-bridge dlq replay`` once the budget is back), and consumption resumes."""
        self._given_up.set()
        self.resumed()

    def resumed(self) -> None:
        """A batch went through: the pause (if any) is over."""
        if self._until is None:
            return
        paused_until = self._until
        self._until = None
        WORKER_PAUSED_UNTIL.set(0)
        log.info("worker_resumed", reason="crm_quota", paused_until=_iso(paused_until))
        self._tell(False)

    def _tell(self, paused: bool) -> None:
        for listener in self._listeners:
            listener(paused)


def quota_pause_reason(now: datetime | None = None) -> str | None:
    """Why this process's worker is paused (for ``/readyz``), from the gauge; None when
    it is not."""
    from wa_bridge.metrics import sample_values

    samples = sample_values(["wa_bridge_worker_paused_until_seconds"])
    until = max((v for _, v in samples["wa_bridge_worker_paused_until_seconds"]), default=0.0)
    if until <= 0:
        return None
    when = datetime.fromtimestamp(until, UTC)
    return f"paused: the CRM's API budget is spent; consumption resumes at {_iso(when)}"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
