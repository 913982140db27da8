"""Access tokens an OAuth stand-in issued, with their expiry on the server's clock."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

TokenState = Literal["valid", "expired", "unknown"]


@dataclass
class TokenBook:
    clock: Callable[[], float]
    _expiry: dict[str, float] = field(default_factory=dict)

    def issue(self, lifetime_s: float, *, prefix: str = "") -> str:
        token = prefix + secrets.token_urlsafe(24)
        self._expiry[token] = self.clock() + lifetime_s
        return token

    def state(self, token: str) -> TokenState:
        expiry = self._expiry.get(token)
        if expiry is None:
            return "unknown"
        return "valid" if self.clock() < expiry else "expired"

    def expired_for_s(self, token: str) -> float:
        return max(0.0, self.clock() - self._expiry.get(token, self.clock()))

    def expire_all(self) -> None:
        """Every token issued so far is now expired (a session timeout, for tests)."""
        now = self.clock()
        for token in self._expiry:
            self._expiry[token] = min(self._expiry[token], now)

    def clear(self) -> None:
        self._expiry.clear()

    def __len__(self) -> int:
        return len(self._expiry)
