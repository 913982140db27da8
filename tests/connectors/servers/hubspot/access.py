"""Who may call a HubSpot portal, and how often.

Auth: the private-app token (``HubSpotServer.token``, never expires) or an OAuth access
token from ``POST /oauth/v1/token`` (``grant_type=refresh_token`` or
``authorization_code``, form-encoded, with ``client_id``/``client_secret``), which
expires after ``access_token_lifetime_s``: then 401 ``EXPIRED_AUTHENTICATION``.

Limits (CRM.md "Limits"): a rolling 10-second window (190 by default, a private app's
Professional/Enterprise figure) and a daily budget (650,000; not applied to OAuth calls,
which HubSpot does not cap daily); search has its own limit (4 a second per token) and,
like the association batch endpoints, is exempt from the 10-second window. Every
authenticated answer carries ``X-HubSpot-RateLimit-*`` headers (the daily pair only on
private-app calls); a refusal is a 429 with ``policyName`` ``TEN_SECONDLY_ROLLING``,
``SECONDLY`` (search) or ``DAILY``, and ``Retry-After`` in seconds.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from .._limits import DailyBudget, RollingWindow
from .._tokens import TokenBook
from ..base import Reply
from .errors import expired_body, hubspot_error, oauth_error, rate_limit_body

Caller = Literal["private_app", "oauth"]


@dataclass
class HubSpotLimits:
    clock: Callable[[], float]
    ten_seconds: int = 190
    daily: int = 650_000
    search_per_second: int = 4
    window: RollingWindow = field(init=False)
    search_windows: dict[str, RollingWindow] = field(init=False)  # per token
    secondly: RollingWindow = field(init=False)
    budget: DailyBudget = field(init=False)

    def __post_init__(self) -> None:
        self.configure(self.ten_seconds, self.daily, self.search_per_second)

    def configure(self, ten_seconds: int, daily: int, search_per_second: int) -> None:
        self.ten_seconds, self.daily, self.search_per_second = ten_seconds, daily, search_per_second
        self.window = RollingWindow(ten_seconds, 10.0, self.clock)
        self.search_windows = {}
        self.secondly = RollingWindow(max(1, ten_seconds // 10), 1.0, self.clock)
        self.budget = DailyBudget(daily)

    def reset(self) -> None:
        self.configure(self.ten_seconds, self.daily, self.search_per_second)

    def search_window(self, token: str) -> RollingWindow:
        window = self.search_windows.get(token)
        if window is None:
            window = self.search_windows[token] = RollingWindow(
                self.search_per_second, 1.0, self.clock
            )
        return window

    def admit(self, caller: Caller, token: str, *, search: bool, exempt: bool) -> Reply | None:
        """Count one request, or refuse it with HubSpot's 429."""
        if caller == "private_app" and self.budget.remaining == 0:
            return self._refuse("DAILY", _seconds_to_midnight_utc())
        if search:
            window = self.search_window(token)
            if not window.take():
                return self._refuse("SECONDLY", window.retry_after_s())
        elif not exempt and not self.window.take():
            return self._refuse("TEN_SECONDLY_ROLLING", self.window.retry_after_s())
        if caller == "private_app":
            self.budget.take()
        self.secondly.take()
        return None

    def _refuse(self, policy: str, retry_after_s: int) -> Reply:
        return Reply(429, rate_limit_body(policy), {"Retry-After": str(retry_after_s)})

    def headers(self, caller: Caller, token: str, *, search: bool) -> dict[str, str]:
        secondly = self.search_window(token) if search else self.secondly
        out = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(self.ten_seconds),
            "X-HubSpot-RateLimit-Remaining": str(self.window.remaining()),
            "X-HubSpot-RateLimit-Secondly": str(secondly.limit),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(secondly.remaining()),
        }
        if caller == "private_app":
            out["X-HubSpot-RateLimit-Daily"] = str(self.daily)
            out["X-HubSpot-RateLimit-Daily-Remaining"] = str(self.budget.remaining)
        return out


def _seconds_to_midnight_utc() -> int:
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - now).total_seconds()))


@dataclass
class HubSpotOAuth:
    """One OAuth app installed in the portal, and the tokens it was given."""

    clock: Callable[[], float]
    client_id: str = "wa-bridge-hubspot-app"
    client_secret: str = "wa-bridge-hubspot-secret"
    refresh_token: str = "wa-bridge-refresh-token"
    redirect_uri: str = "http://localhost:8080/oauth/callback"
    access_token_lifetime_s: float = 1800.0
    tokens: TokenBook = field(init=False)
    _codes: set[str] = field(default_factory=set)
    _refresh_tokens: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.tokens = TokenBook(self.clock)
        self._refresh_tokens.add(self.refresh_token)

    def issue_auth_code(self) -> str:
        code = "code-" + secrets.token_urlsafe(12)
        self._codes.add(code)
        return code

    def reset(self) -> None:
        self.tokens.clear()
        self._codes.clear()
        self._refresh_tokens = {self.refresh_token}

    def token(self, form: dict[str, str]) -> Reply:
        """``POST /oauth/v1/token``."""
        if form.get("client_id") != self.client_id:
            return oauth_error("BAD_CLIENT_ID", "missing or unknown client id")
        if form.get("client_secret") != self.client_secret:
            return oauth_error("BAD_CLIENT_SECRET", "missing or invalid client secret")
        grant = form.get("grant_type")
        if grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            if refresh not in self._refresh_tokens:
                return oauth_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        elif grant == "authorization_code":
            if form.get("redirect_uri") != self.redirect_uri:
                return oauth_error("BAD_REDIRECT_URI", "redirect_uri does not match")
            if form.get("code") not in self._codes:
                return oauth_error("BAD_AUTH_CODE", "missing or unknown auth code")
            self._codes.discard(form["code"])
            refresh = "refresh-" + secrets.token_urlsafe(16)
            self._refresh_tokens.add(refresh)
        else:
            return oauth_error("BAD_GRANT_TYPE", f"unsupported grant_type {grant!r}")
        lifetime = self.access_token_lifetime_s
        body: dict[str, Any] = {
            "token_type": "bearer",
            "refresh_token": refresh,
            "access_token": self.tokens.issue(lifetime, prefix="oauth-"),
            "expires_in": int(lifetime),
        }
        return Reply(200, body)

    def authenticate(self, token: str) -> Reply | None:
        state = self.tokens.state(token)
        if state == "valid":
            return None
        if state == "expired":
            return Reply(401, expired_body(self.tokens.expired_for_s(token)))
        return Reply(
            401,
            hubspot_error(
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            ),
        )
