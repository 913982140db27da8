"""Request budgets the vendor stand-ins share: a rolling window and a daily allocation.

Both read the server's clock (``ContractServer.clock``), so a test can drive them with a
manual clock instead of sleeping.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RollingWindow:
    """At most ``limit`` requests in any ``span_s`` seconds."""

    limit: int
    span_s: float
    clock: Callable[[], float]
    _times: deque[float] = field(default_factory=deque)

    def _trim(self) -> float:
        now = self.clock()
        while self._times and self._times[0] <= now - self.span_s:
            self._times.popleft()
        return now

    def used(self) -> int:
        self._trim()
        return len(self._times)

    def remaining(self) -> int:
        return max(0, self.limit - self.used())

    def take(self) -> bool:
        """Count one request; False (and nothing counted) when the window is full."""
        now = self._trim()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True

    def retry_after_s(self) -> int:
        """Whole seconds until the oldest request leaves the window (at least 1)."""
        now = self._trim()
        if not self._times:
            return 1
        return max(1, math.ceil(self._times[0] + self.span_s - now))

    def clear(self) -> None:
        self._times.clear()


@dataclass
class DailyBudget:
    """A daily allocation; :meth:`reset` is midnight (tests call it)."""

    limit: int
    used: int = 0

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def take(self) -> bool:
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def reset(self) -> None:
        self.used = 0
