"""Bulk replay runs: what was selected, how far the run got (resumable), what it did."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._rows import record_of
from wa_bridge.store.tables import replay_runs

__all__ = [
    "ReplayRun",
    "ReplayRunStatus",
    "advance_run",
    "finish_run",
    "get_run",
    "last_open_run",
    "start_run",
]

ReplayRunStatus = Literal["running", "done"]
_r = replay_runs.c


@dataclass(frozen=True, slots=True)
class ReplayRun:
    id: int
    actor: str
    selection: dict[str, Any]
    status: ReplayRunStatus
    cursor: int  # the last dead letter id handled; the run goes on after it
    replayed: int
    failed: int
    held: int
    started_at: datetime
    updated_at: datetime


def _to_run(row: Any) -> ReplayRun:
    return record_of(
        ReplayRun,
        row,
        id=int(row.id),
        selection=dict(row.selection or {}),
        cursor=int(row.cursor),
        replayed=int(row.replayed),
        failed=int(row.failed),
        held=int(row.held),
    )


async def start_run(
    conn: AsyncConnection, now: datetime, *, actor: str, selection: Mapping[str, Any]
) -> ReplayRun:
    result = await conn.execute(
        insert(replay_runs).returning(replay_runs),
        {
            "actor": actor,
            "selection": dict(selection),
            "status": "running",
            "cursor": 0,
            "replayed": 0,
            "failed": 0,
            "held": 0,
            "started_at": now,
            "updated_at": now,
        },
    )
    return _to_run(result.one())


async def advance_run(
    conn: AsyncConnection,
    now: datetime,
    run_id: int,
    *,
    cursor: int,
    replayed: int,
    failed: int,
    held: int,
) -> None:
    """Move the cursor past ``cursor`` and add the counts of what was handled."""
    await conn.execute(
        update(replay_runs)
        .where(_r.id == run_id)
        .values(
            cursor=cursor,
            replayed=_r.replayed + replayed,
            failed=_r.failed + failed,
            held=_r.held + held,
            updated_at=now,
        )
    )


async def finish_run(conn: AsyncConnection, now: datetime, run_id: int) -> None:
    await conn.execute(
        update(replay_runs).where(_r.id == run_id).values(status="done", updated_at=now)
    )


async def get_run(conn: AsyncConnection, run_id: int) -> ReplayRun | None:
    row = (await conn.execute(select(replay_runs).where(_r.id == run_id))).first()
    return None if row is None else _to_run(row)


async def last_open_run(conn: AsyncConnection) -> ReplayRun | None:
    """The most recent run that did not finish (interrupted), if any."""
    row = (
        await conn.execute(
            select(replay_runs).where(_r.status == "running").order_by(_r.id.desc()).limit(1)
        )
    ).first()
    return None if row is None else _to_run(row)
