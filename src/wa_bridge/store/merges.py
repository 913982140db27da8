"""Table ``identity_merges``: one row per ``wa-bridge identity merge`` (see
:mod:`wa_bridge.store.identity_merges`), read by the report, the unmerge and the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store.tables import identity_merges

__all__ = ["MergeRow", "active_merges", "get_merge", "list_merges"]


@dataclass(frozen=True, slots=True)
class MergeRow:
    """One ``identity_merges`` row."""

    id: int
    keep_id: str
    other_id: str
    status: str  # merged | unmerged
    crm: str
    crm_result: str
    crm_reversible: bool
    undo: Mapping[str, Any]
    actor: str
    merged_at: datetime
    unmerged_by: str | None = None
    unmerged_at: datetime | None = None


def _row(r: Any) -> MergeRow:
    return MergeRow(
        id=int(r.id),
        keep_id=str(r.keep_id),
        other_id=str(r.other_id),
        status=str(r.status),
        crm=str(r.crm),
        crm_result=str(r.crm_result),
        crm_reversible=bool(r.crm_reversible),
        undo=r.undo if isinstance(r.undo, dict) else {},
        actor=str(r.actor),
        merged_at=r.merged_at,
        unmerged_by=r.unmerged_by,
        unmerged_at=r.unmerged_at,
    )


async def get_merge(conn: AsyncConnection, merge_id: int) -> MergeRow | None:
    found = (
        await conn.execute(select(identity_merges).where(identity_merges.c.id == merge_id))
    ).first()
    return _row(found) if found is not None else None


async def list_merges(conn: AsyncConnection, limit: int = 100) -> list[MergeRow]:
    """Newest first."""
    rows = await conn.execute(
        select(identity_merges).order_by(identity_merges.c.id.desc()).limit(limit)
    )
    return [_row(r) for r in rows]


async def active_merges(conn: AsyncConnection) -> dict[str, MergeRow]:
    """OTHER id → its merge, for every merge not undone."""
    rows = await conn.execute(select(identity_merges).where(identity_merges.c.status == "merged"))
    return {str(r.other_id): _row(r) for r in rows}
