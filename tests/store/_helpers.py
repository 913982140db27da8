"""Shared test helpers for the store tests (plain functions; fixtures live in conftest)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import select

from wa_bridge.store import SqlStore
from wa_bridge.store.tables import identities

StoreFactory = Callable[..., Awaitable[SqlStore]]
T0 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


async def current_links(store: SqlStore) -> dict[tuple[str, str, str], str]:
    """(business, kind, value) → contact id for every current link."""
    t = identities.c
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(t.business, t.kind, t.value, t.contact_id).where(t.is_current)
        )
        return {(b, k, v): c for b, k, v, c in rows}


async def history_links(store: SqlStore) -> set[tuple[str, str, str, str]]:
    t = identities.c
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(t.business, t.kind, t.value, t.contact_id).where(t.is_current == False)  # noqa: E712
        )
        return {(b, k, v, c) for b, k, v, c in rows}
