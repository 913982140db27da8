"""The audit log: who did what to which record (replays, discards, admin reads)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store.tables import audit_log

__all__ = ["record_audit"]


async def record_audit(
    conn: AsyncConnection,
    *,
    at: datetime,
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
