"""Which database errors are outages (waited out) and which are the statement's fault."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from wa_bridge.errors import StoreUnavailable
from wa_bridge.store import create_engine, db
from wa_bridge.store.db import store_errors

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize(
    ("errcode", "is_outage"),
    [
        ("disk_full", True),  # 53100
        ("out_of_memory", True),  # 53200
        ("too_many_connections", True),  # 53300
        ("admin_shutdown", True),  # 57P01
        ("cannot_connect_now", True),  # 57P03
        ("io_error", True),  # 58030
        ("unique_violation", False),  # 23505: the statement's fault
        ("undefined_table", False),  # 42P01: a bug or a missing migration
    ],
)
async def test_server_conditions_are_outages_statement_faults_are_not(
    pg_url: str, errcode: str, is_outage: bool
) -> None:
    engine = create_engine(pg_url)
    raised: BaseException | None = None
    try:
        with store_errors("a test"):
            async with engine.connect() as conn:
                await conn.execute(
                    text(f"DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{errcode}'; END $$")
                )
    except Exception as exc:
        raised = exc
    finally:
        await engine.dispose()
    assert raised is not None
    assert isinstance(raised, StoreUnavailable) is is_outage, repr(raised)


async def _backend_pid(engine: AsyncEngine) -> int:
    """The PostgreSQL backend of the connection ``engine``'s pool hands out now."""
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _kill_pooled_backend(engine: AsyncEngine, killer: AsyncEngine) -> int:
    """Terminate the backend of the one connection in ``engine``'s pool; return its pid."""
    pid = await _backend_pid(engine)
    async with killer.connect() as conn:
        assert (await conn.execute(text(f"SELECT pg_terminate_backend({pid})"))).scalar_one()
    return pid


async def test_a_connection_idle_in_the_pool_is_pinged_and_replaced_when_dead(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_IDLE_S", 0.2)
    engine, killer = create_engine(pg_url, pool_size=1), create_engine(pg_url)
    try:
        dead = await _kill_pooled_backend(engine, killer)
        await asyncio.sleep(0.3)  # idle past PING_IDLE_S: the checkout pings it first
        assert await _backend_pid(engine) != dead
    finally:
        await engine.dispose()
        await killer.dispose()


async def test_a_connection_back_in_the_pool_just_now_is_not_pinged(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within PING_IDLE_S the checkout sends nothing: a dead backend then fails the first
    statement as an outage (the batch is retried), and the pool replaces the connection."""
    monkeypatch.setattr(db, "PING_IDLE_S", 60.0)
    engine, killer = create_engine(pg_url, pool_size=1), create_engine(pg_url)
    try:
        dead = await _kill_pooled_backend(engine, killer)
        with pytest.raises(StoreUnavailable), store_errors("a test"):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        assert await _backend_pid(engine) != dead
    finally:
        await engine.dispose()
        await killer.dispose()
