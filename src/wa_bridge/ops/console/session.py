"""Console sign-in sessions: a signed, expiring cookie holding the role, the actor (a hash
of the token, never the token) and the session's CSRF token.

The cookie is ``HttpOnly``, ``SameSite=Strict``, scoped to ``/admin`` and ``Secure`` on
HTTPS (``console_secure_cookie``). Its value is ``base64(json).base64(hmac-sha256)``
under ``console_session_secret`` (a random key per process when unset). Forms carry the
session's CSRF token; :func:`csrf_ok` compares it in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final, cast

import orjson

from wa_bridge.auth import Principal, Role

__all__ = ["COOKIE", "Session", "SessionSigner", "csrf_ok"]

COOKIE: Final = "wa_bridge_console"
_CONSOLE_ROLES: Final = frozenset({"viewer", "operator"})


@dataclass(frozen=True, slots=True)
class Session:
    role: Role
    actor: str
    csrf: str
    expires_at: int  # epoch seconds

    @property
    def principal(self) -> Principal:
        return Principal(role=self.role, actor=self.actor)

    @property
    def may_act(self) -> bool:
        """Replay and discard: operators only."""
        return self.principal.may("operator")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Issues and checks session cookie values."""

    def __init__(self, key: bytes | None, *, ttl_s: int) -> None:
        self._key = key or secrets.token_bytes(32)
        self.ttl_s = ttl_s

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()

    def issue(self, principal: Principal, *, now: float) -> tuple[str, Session]:
        session = Session(
            role=principal.role,
            actor=principal.actor,
            csrf=secrets.token_urlsafe(24),
            expires_at=int(now) + self.ttl_s,
        )
        body = orjson.dumps(
            {"r": session.role, "a": session.actor, "c": session.csrf, "e": session.expires_at}
        )
        return f"{_b64(body)}.{_b64(self._mac(body))}", session

    def check(self, value: str | None, *, now: float) -> Session | None:
        """The session of a cookie value, or None (absent, forged, expired, bad role)."""
        if not value or "." not in value:
            return None
        body_text, _, mac_text = value.partition(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
            if not hmac.compare_digest(mac, self._mac(body)):
                return None
            data = orjson.loads(body)
        except (ValueError, orjson.JSONDecodeError):
            return None
        if not isinstance(data, dict) or data.get("r") not in _CONSOLE_ROLES:
            return None
        if not isinstance(data.get("e"), int) or data["e"] <= now:
            return None
        return Session(cast(Role, data["r"]), str(data["a"]), str(data["c"]), int(data["e"]))


def csrf_ok(session: Session, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(session.csrf.encode(), (given or "").encode())
