"""What the admin API stands on: the state store and the worker's replay path, opened lazily.

The receiver process serves the admin API only when admin tokens are configured; the
store, mapping and connector are opened on the first admin call (not at start-up, so a
receiver never waits on the database to take webhooks) and closed at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from fastapi import APIRouter

from wa_bridge.connectors.base import CrmConnector
from wa_bridge.ops.admin import ReplayOutcome, build_admin_router
from wa_bridge.ops.auth import TokenBook
from wa_bridge.settings import Settings
from wa_bridge.store.api import Store

__all__ = ["AdminBackend", "admin_api"]


class AdminBackend:
    """Lazily opened store + replay pipeline for the admin routes (implements Replayer)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._store: Store | None = None
        self._connector: CrmConnector | None = None
        self._lock = asyncio.Lock()

    async def store(self) -> Store:
        async with self._lock:
            if self._store is None:
                from wa_bridge.worker.runner import _open_store

                self._store = await _open_store(self._settings)
            return self._store

    async def replay(self, ids: Sequence[int], *, dry_run: bool, actor: str) -> list[ReplayOutcome]:
        from wa_bridge.worker.pipeline import Pipeline
        from wa_bridge.worker.replay import replay_dead_letters
        from wa_bridge.worker.runner import _build_connector, _load_mapping

        store = await self.store()
        letters = []
        outcomes: dict[int, ReplayOutcome] = {}
        for dead_letter_id in ids:
            letter = await store.get_dead_letter(dead_letter_id)
            if letter is None:
                outcomes[dead_letter_id] = ReplayOutcome(id=dead_letter_id, result="not_found")
            else:
                letters.append(letter)
        pipeline = None
        if not dry_run and letters:
            if self._connector is None:
                self._connector = _build_connector(self._settings, store)
            pipeline = Pipeline(store, _load_mapping(self._settings), self._connector)
        for result in await replay_dead_letters(
            store, pipeline, letters, actor=actor, dry_run=dry_run
        ):
            outcomes[result.dead_letter_id] = ReplayOutcome(
                id=result.dead_letter_id,
                result=result.status,  # same vocabulary as ReplayResult.status
                error=result.detail or None,
            )
        return [outcomes[i] for i in ids]

    async def aclose(self) -> None:
        if self._connector is not None:
            await self._connector.aclose()
        if self._store is not None:
            await self._store.aclose()


def admin_api(settings: Settings) -> tuple[list[APIRouter], list[Callable[[], Awaitable[None]]]]:
    """The admin routers and their closers, or nothing when no admin token is configured.

    Raises ConfigError for malformed WA_BRIDGE_ADMIN_TOKENS.
    """
    tokens = TokenBook(settings.admin_tokens)
    if not tokens:
        return [], []
    backend = AdminBackend(settings)
    router = build_admin_router(
        tokens=tokens, get_store=backend.store, get_replayer=lambda: backend
    )
    return [router], [backend.aclose]
