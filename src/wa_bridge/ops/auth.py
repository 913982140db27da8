"""Admin tokens with roles. Tokens come from settings.admin_tokens as ``role:token``.

What each role may do is listed explicitly in ``GRANTS``: ``viewer`` may read,
``operator`` may also replay and discard, and ``inbox`` (the agents' inbox, a machine)
may only post inbox events: it implies no other role and no other role implies it.
Comparison is constant time; a token is never logged, only the role and a short hash.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, cast

from pydantic import SecretStr

from wa_bridge.errors import ConfigError
from wa_bridge.log import hash_key

__all__ = ["GRANTS", "ROLES", "Principal", "Role", "TokenBook"]

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


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made an admin call: the role and a hash of the token (for the audit log)."""

    role: Role
    actor: str

    def may(self, needed: Role) -> bool:
        return needed in GRANTS[self.role]


class TokenBook:
    """Looks a bearer token up among the configured ``role:token`` entries."""

    def __init__(self, entries: Sequence[SecretStr]) -> None:
        self._tokens: list[tuple[bytes, Role]] = []
        for entry in entries:
            role, sep, token = entry.get_secret_value().partition(":")
            if not sep or role not in ROLES or len(token) < 16:
                raise ConfigError(
                    "WA_BRIDGE_ADMIN_TOKENS: each entry must be role:token with role inbox, viewer "
                    "or operator and a token of at least 16 characters"
                )
            self._tokens.append((token.encode(), cast(Role, role)))

    def __bool__(self) -> bool:
        return bool(self._tokens)

    def lookup(self, token: str) -> Principal | None:
        given = token.encode()
        found: Principal | None = None
        for expected, role in self._tokens:
            # compare against every entry so timing does not reveal which one matched
            if hmac.compare_digest(given, expected) and found is None:
                found = Principal(role=role, actor="token:" + hash_key(token))
        return found
