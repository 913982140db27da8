"""The consent ledger: auditable opt-in / opt-out evidence, one row per event (idempotent)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._upsert import insert_for
from wa_bridge.store.tables import consents

__all__ = ["ConsentRecord", "record_consents"]


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    event_id: str
    contact_id: str
    status: Literal["opt_in", "opt_out"]
    at: datetime
    channel: str = "whatsapp"
    purpose: str = "marketing"
    evidence: str | None = None


async def record_consents(conn: AsyncConnection, records: Sequence[ConsentRecord]) -> None:
    """Append the records; an event already recorded is skipped (redelivery)."""
    if not records:
        return
    stmt = insert_for(conn, consents).on_conflict_do_nothing(index_elements=["event_id"])
    await conn.execute(
        stmt,
        [
            {
                "event_id": r.event_id,
                "contact_id": r.contact_id,
                "channel": r.channel,
                "purpose": r.purpose,
                "status": r.status,
                "evidence": r.evidence,
                "at": r.at,
            }
            for r in records
        ],
    )
