"""A FastAPI dependency that admits a bearer token of a given role (admin API, inbox).

(No ``from __future__ import annotations`` here: FastAPI evaluates the dependency's
annotation, which names the per-call security scheme.)
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from wa_bridge.auth import Principal, Role, TokenBook

__all__ = ["bearer_guard"]


def bearer_guard(
    tokens: TokenBook, role: Role, scheme: HTTPBearer, *, refused: str
) -> Callable[..., Awaitable[Principal]]:
    """The caller's principal if its bearer token has ``role``; else 401 (no or unknown
    token) or 403 with ``refused`` (a token of another role)."""

    async def dependency(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(scheme)],
    ) -> Principal:
        principal = tokens.lookup(credentials.credentials) if credentials else None
        if principal is None:
            raise HTTPException(
                status_code=401,
                detail=f"a bearer token of role {role} from WA_BRIDGE_ADMIN_TOKENS is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not principal.may(role):
            raise HTTPException(status_code=403, detail=refused)
        return principal

    return dependency
