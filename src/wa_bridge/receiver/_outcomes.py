"""Request outcomes of the webhook endpoint: metrics for each, and logs that stay small.

At 10k requests/s one log line per request is too much (and a structlog call costs a
few microseconds even when its level is off), so a published request is only counted:
``wa_bridge_webhook_requests_total{status="200"}`` and :attr:`Outcomes.totals`. A 4xx/5xx
outcome is logged at WARNING at most once per ``interval_s`` per kind, with the number of
such outcomes since the previous line. Only codes and counts are logged, never bodies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from wa_bridge.log import get_logger
from wa_bridge.metrics import EVENTS_PUBLISHED, WEBHOOK_REQUESTS

__all__ = ["Outcomes"]

log = get_logger("receiver")

_PUBLISHED: Final = (200, "published")


class Outcomes:
    """Counts outcomes by (status, error); rate-limits the warning lines about failures."""

    def __init__(
        self, *, interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self.totals: dict[tuple[int, str], int] = {}
        self._unlogged: dict[tuple[int, str], int] = {}
        self._last_logged_at: dict[tuple[int, str], float] = {}
        self._counters: dict[int, Any] = {}
        self._published_counter: Any = None

    def published(self, events: int) -> None:
        """A POST answered 200 after Kafka acknowledged its ``events`` (the hot path)."""
        EVENTS_PUBLISHED.inc(events)
        totals = self.totals
        totals[_PUBLISHED] = totals.get(_PUBLISHED, 0) + 1
        counter = self._published_counter
        if counter is None:
            counter = self._published_counter = self._counter(200)
        counter.inc()

    def record(self, status: int, outcome: str, *, is_post: bool = True) -> None:
        key = (status, outcome)
        self.totals[key] = self.totals.get(key, 0) + 1
        if is_post:
            self._counter(status).inc()
        if status < 400:
            return
        self._unlogged[key] = self._unlogged.get(key, 0) + 1
        now = self._clock()
        if now - self._last_logged_at.get(key, float("-inf")) >= self._interval_s:
            count = self._unlogged.pop(key)
            self._last_logged_at[key] = now
            log.warning("webhook_rejected", status=status, outcome=outcome, count=count)

    def _counter(self, status: int) -> Any:
        # The labelled child is looked up once per status: labels() takes a lock and
        # builds a tuple on every call.
        counter = self._counters.get(status)
        if counter is None:
            counter = self._counters[status] = WEBHOOK_REQUESTS.labels(status=str(status))
        return counter
