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
from typing import Final

from wa_bridge.log import get_logger
from wa_bridge.metrics import EVENTS_PUBLISHED_TALLY, WEBHOOK_REQUESTS_TALLY

__all__ = ["Outcomes"]

log = get_logger("receiver")

_PUBLISHED: Final = (200, "published")
_NO_LABELS: Final[tuple[str, ...]] = ()
_STATUS_200: Final = ("200",)


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

    def published(self, events: int) -> None:
        """A POST answered 200 after Kafka acknowledged its ``events`` (the hot path:
        plain integer counts, settled into the Prometheus counters when collected)."""
        totals = self.totals
        totals[_PUBLISHED] = totals.get(_PUBLISHED, 0) + 1
        published = EVENTS_PUBLISHED_TALLY.counts
        published[_NO_LABELS] = published.get(_NO_LABELS, 0) + events
        requests = WEBHOOK_REQUESTS_TALLY.counts
        requests[_STATUS_200] = requests.get(_STATUS_200, 0) + 1

    def record(self, status: int, outcome: str, *, is_post: bool = True) -> None:
        key = (status, outcome)
        self.totals[key] = self.totals.get(key, 0) + 1
        if is_post:
            WEBHOOK_REQUESTS_TALLY.add((str(status),))
        if status < 400:
            return
        self._unlogged[key] = self._unlogged.get(key, 0) + 1
        now = self._clock()
        if now - self._last_logged_at.get(key, float("-inf")) >= self._interval_s:
            count = self._unlogged.pop(key)
            self._last_logged_at[key] = now
            log.warning("webhook_rejected", status=status, outcome=outcome, count=count)
