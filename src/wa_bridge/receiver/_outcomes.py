"""Request outcomes of the webhook endpoint: metrics for each, and logs that stay small.

At 10k requests/s one log line per request is too much, so a request is logged at DEBUG,
and a 4xx/5xx outcome at WARNING at most once per ``interval_s`` per kind, with the number
of such outcomes since the previous line. Only codes and counts are logged, never bodies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from wa_bridge.log import get_logger
from wa_bridge.ops.metrics import WEBHOOK_REQUESTS

__all__ = ["Outcomes"]

log = get_logger("receiver")


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

    def record(self, status: int, outcome: str, *, events: int = 0, is_post: bool = True) -> None:
        key = (status, outcome)
        self.totals[key] = self.totals.get(key, 0) + 1
        if is_post:
            counter = self._counters.get(status)
            if counter is None:
                counter = self._counters[status] = WEBHOOK_REQUESTS.labels(status=str(status))
            counter.inc()
        if status < 400:
            log.debug("webhook_answered", status=status, outcome=outcome, events=events)
            return
        self._unlogged[key] = self._unlogged.get(key, 0) + 1
        now = self._clock()
        if now - self._last_logged_at.get(key, float("-inf")) >= self._interval_s:
            count = self._unlogged.pop(key)
            self._last_logged_at[key] = now
            log.warning("webhook_rejected", status=status, outcome=outcome, count=count)
