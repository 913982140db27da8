"""The audit log: who did what to which record (replays, discards, sign-ins, purges)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._chunks import chunks
from wa_bridge.store._rows import record_of
from wa_bridge.store.tables import audit_log

__all__ = [
    "AuditEntry",
    "AuditFilter",
    "count_by_target",
    "list_audit",
    "purge_audit",
    "record_audit",
]

_a = audit_log.c


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    detail: str


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit rows to list: each field narrows (``action`` matches a prefix)."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    action: str | None = None
    targets: Sequence[str] = ()
    limit: int = 100


async def record_audit(
    conn: AsyncConnection,
    at: datetime,
    *,
    actor: str,
    role: str,
    action: str,
    target: str,
    detail: str,
) -> None:
    await conn.execute(
        insert(audit_log),
        {
            "at": at,
            "actor": actor,
            "role": role,
            "action": action,
            "target": target,
            "detail": detail,
        },
    )


async def list_audit(conn: AsyncConnection, flt: AuditFilter) -> list[AuditEntry]:
    """Newest first, at most ``flt.limit``."""
    stmt = select(audit_log)
    if flt.since is not None:
        stmt = stmt.where(_a.at >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(_a.at < flt.until)
    if flt.actor is not None:
        stmt = stmt.where(_a.actor == flt.actor)
    if flt.action is not None:
        stmt = stmt.where(_a.action.startswith(flt.action, autoescape=True))
    if flt.targets:
        stmt = stmt.where(_a.target.in_(list(flt.targets)))
    stmt = stmt.order_by(_a.at.desc(), _a.id.desc()).limit(flt.limit)
    return [record_of(AuditEntry, r, id=int(r.id)) for r in await conn.execute(stmt)]


async def count_by_target(
    conn: AsyncConnection, *, action: str, targets: Sequence[str], detail_prefix: str
) -> dict[str, int]:
    """Per target: rows of ``action`` whose detail starts with ``detail_prefix``."""
    out: dict[str, int] = {}
    for part in chunks(list(dict.fromkeys(targets))):
        stmt = (
            select(_a.target, func.count())
            .where(
                _a.action == action,
                _a.target.in_(part),
                _a.detail.startswith(detail_prefix, autoescape=True),
            )
            .group_by(_a.target)
        )
        out.update({str(t): int(n) for t, n in await conn.execute(stmt)})
    return out


async def purge_audit(conn: AsyncConnection, older_than: datetime) -> int:
    result = await conn.execute(delete(audit_log).where(_a.at < older_than))
    return int(result.rowcount)
