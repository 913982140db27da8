"""Admin tokens with roles. Tokens come from settings.admin_tokens as ``role:token``,
or as ``role:sha256:<64 hex digits>`` (the SHA-256 of the token), so the token itself
never has to sit in the receiver's environment: ``printf %s "$TOKEN" | sha256sum``.

What each role may do is listed explicitly in ``GRANTS``: ``viewer`` may read,
``operator`` may also replay and discard, and ``inbox`` (the agents' inbox, a machine)
may only post inbox events: it implies no other role and no other role implies it.
Only SHA-256 digests are kept and compared, in constant time, against every entry; a
token is never logged, only the role and a short keyed hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, cast

from pydantic import SecretStr

from wa_bridge.errors import ConfigError
from wa_bridge.log import hash_key

__all__ = ["GRANTS", "HASH_PREFIX", "ROLES", "Principal", "Role", "TokenBook", "token_digest"]

Role = Literal["inbox", "viewer", "operator"]
# Rank, lowest first (for display and ordering only; access is decided by GRANTS).
ROLES: Final[dict[str, int]] = {"inbox": 0, "viewer": 1, "operator": 2}
# The roles a token of each role acts as. Kept explicit so that adding a role never
# grants it anything by accident (inbox must not read dead letters, viewer must not post).
GRANTS: Final[dict[Role, frozenset[Role]]] = {
    "inbox": frozenset({"inbox"}),
    "viewer": frozenset({"viewer"}),
    "operator": frozenset({"viewer", "operator"}),
}
HASH_PREFIX: Final = "sha256:"
_HEX_DIGEST: Final = re.compile(r"[0-9a-f]{64}")
MIN_TOKEN_CHARS: Final = 16
_ENTRY_RULE: Final = (
    "WA_BRIDGE_ADMIN_TOKENS: each entry must be role:token (a token of at least "
    f"{MIN_TOKEN_CHARS} characters) or role:sha256:<64 hex digits>, with role inbox, "
    "viewer or operator"
)


def token_digest(token: str) -> str:
    """The hex SHA-256 of ``token``: what ``role:sha256:<hex>`` entries hold."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made an admin call: the role and a hash of the token (for the audit log)."""

    role: Role
    actor: str

    def may(self, needed: Role) -> bool:
        return needed in GRANTS[self.role]


class TokenBook:
    """Looks a bearer token up among the configured ``role:token`` and
    ``role:sha256:<hex>`` entries (it keeps digests only)."""

    def __init__(self, entries: Sequence[SecretStr]) -> None:
        self._digests: list[tuple[bytes, Role]] = []
        for entry in entries:
            role, sep, token = entry.get_secret_value().partition(":")
            if not sep or role not in ROLES:
                raise ConfigError(_ENTRY_RULE)
            self._digests.append((_entry_digest(token), cast(Role, role)))

    def __bool__(self) -> bool:
        return bool(self._digests)

    def lookup(self, token: str) -> Principal | None:
        given = bytes.fromhex(token_digest(token))
        found: Principal | None = None
        for expected, role in self._digests:
            # compare against every entry so timing does not reveal which one matched
            if hmac.compare_digest(given, expected) and found is None:
                found = Principal(role=role, actor="token:" + hash_key(token))
        return found


def _entry_digest(token: str) -> bytes:
    if token.startswith(HASH_PREFIX):
        digest = token[len(HASH_PREFIX) :].lower()
        if not _HEX_DIGEST.fullmatch(digest):
            raise ConfigError(_ENTRY_RULE)
        return bytes.fromhex(digest)
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(_ENTRY_RULE)
    return bytes.fromhex(token_digest(token))
