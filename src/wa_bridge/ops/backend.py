"""What the admin API stands on: the state store and the worker's replay path, opened lazily.

The receiver process serves the admin API only when admin tokens are configured; the
store, mapping and connector are opened on the first admin call (not at start-up, so a
receiver never waits on the database to take webhooks) and closed at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from fastapi import APIRouter

from wa_bridge.auth import Principal, Role, TokenBook
from wa_bridge.bus.producer import EventPublisher
from wa_bridge.ops.admin import ReplayOutcome, build_admin_router
from wa_bridge.ops.console import build_console_router
from wa_bridge.settings import Settings
from wa_bridge.store.api import Store

if TYPE_CHECKING:
    from wa_bridge.worker.assembly import DeadLetterReplayer
    from wa_bridge.worker.pipeline import EventMapper

__all__ = ["AdminBackend", "admin_api"]


class AdminBackend:
    """Lazily opened store + replayer for the admin routes (implements Replayer)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._store: Store | None = None
        self._replayer: DeadLetterReplayer | None = None
        self._stamp = 0.0
        self._lock = asyncio.Lock()

    async def store(self) -> Store:
        async with self._lock:
            if self._store is None:
                # the worker's modules load on the first admin call, not with the receiver
                from wa_bridge.worker.assembly import open_state_store

                self._store = await open_state_store(self._settings)
            return self._store

    def mapping_stamp(self) -> float:
        """The newest change time among the mapping's directory's YAML files: a replay
        after the mapping was fixed uses the fix (no restart)."""
        from wa_bridge.resources import resolve_mappings_path

        folder = resolve_mappings_path(self._settings.mappings_path).parent
        try:
            return max((f.stat().st_mtime for f in folder.rglob("*.y*ml")), default=0.0)
        except OSError:
            return 0.0

    def mapper(self) -> EventMapper:
        """The mapping as it is on disk now (raises ConfigError when it is broken)."""
        from wa_bridge.worker.assembly import load_event_mapper

        return load_event_mapper(self._settings)

    async def replay(
        self, ids: Sequence[int], *, dry_run: bool, actor: str, role: Role
    ) -> list[ReplayOutcome]:
        store = await self.store()
        stamp = self.mapping_stamp()
        if self._replayer is not None and stamp != self._stamp:
            await self._replayer.aclose()  # the mapping changed: build it again
            self._replayer = None
        if self._replayer is None:
            from wa_bridge.worker.assembly import DeadLetterReplayer

            self._replayer = DeadLetterReplayer(self._settings, store)
            self._stamp = stamp
        results = await self._replayer.replay(ids, actor=actor, role=role, dry_run=dry_run)
        outcomes = {
            r.dead_letter_id: ReplayOutcome(
                id=r.dead_letter_id, result=r.status, error=r.detail or None
            )
            for r in results
        }
        return [outcomes[i] for i in ids]

    async def aclose(self) -> None:
        if self._replayer is not None:
            await self._replayer.aclose()
        if self._store is not None:
            await self._store.aclose()


def admin_api(
    settings: Settings, publisher: EventPublisher | None = None
) -> tuple[list[APIRouter], list[Callable[[], Awaitable[None]]]]:
    """The admin routers and their closers, or nothing when no admin token is configured;
    with a ``publisher``, ``POST /consents`` too (it publishes, and audits in the store).

    Raises ConfigError for malformed WA_BRIDGE_ADMIN_TOKENS.
    """
    tokens = TokenBook(settings.admin_tokens)
    if not tokens:
        return [], []
    backend = AdminBackend(settings)
    router = build_admin_router(
        tokens=tokens, get_store=backend.store, get_replayer=lambda: backend
    )
    secret = settings.console_session_secret
    console = build_console_router(
        tokens=tokens,
        backend=backend,
        session_key=secret.get_secret_value().encode() if secret else None,
        session_ttl_s=settings.console_session_ttl_s,
        secure_cookie=settings.console_secure_cookie,
    )
    routers = [router, console]
    if publisher is not None:
        from wa_bridge.ops.consents import build_consents_router

        async def audit(who: Principal, action: str, target: str, detail: str) -> None:
            await (await backend.store()).record_audit(
                actor=who.actor, role=who.role, action=action, target=target, detail=detail
            )

        routers.append(build_consents_router(tokens=tokens, publisher=publisher, audit=audit))
    return routers, [backend.aclose]
