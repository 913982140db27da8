"""Retention: forget what is older than its window, and audit every purge.

Windows (days; settings ``*_retention_days``):

==================  ==========================================================  ========
what                rows                                                        default
==================  ==========================================================  ========
ledger              dedup ledger ids (must outlast Meta's 7 days of retries)    14
dead_letters        replayed or discarded dead letters                          90
open_dead_letters   dead letters nobody replayed or discarded                   keep
note_bodies         the built-in SQL CRM's note text (the note itself stays)    keep
status_history      message delivery states (message_statuses)                  keep
identity_events     identity decisions                                          keep
audit_log           the audit log itself                                        keep
traces              per-event traces (wa-bridge trace)                          30
==================  ==========================================================  ========

A window of 0 keeps everything. Each purge that removed something writes an audit row
(actor ``retention``, action ``retention.purge``, target the table). Safe to rerun.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal, Protocol, get_args

from sqlalchemy import Delete, Update, delete, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store import audit, dead_letters, ledger
from wa_bridge.store.tables import crm_notes, event_traces, identity_events, message_statuses

if TYPE_CHECKING:
    from wa_bridge.settings import Settings

__all__ = [
    "PURGE_TARGETS",
    "PurgeTarget",
    "Purged",
    "RetentionWindows",
    "purge_expired",
    "purge_target",
]

PurgeTarget = Literal[
    "ledger",
    "dead_letters",
    "open_dead_letters",
    "note_bodies",
    "status_history",
    "identity_events",
    "audit_log",
    "traces",
]
PURGE_TARGETS: Final[tuple[PurgeTarget, ...]] = get_args(PurgeTarget)
RETENTION_ACTOR: Final = "retention"


@dataclass(frozen=True, slots=True)
class RetentionWindows:
    """Days to keep, per target; 0 keeps everything.

    The policy and its defaults are the settings' (``from_settings``, the table above); a
    window left out here is 0, so ``RetentionWindows(ledger=14)`` purges the ledger only.
    """

    ledger: int = 0
    dead_letters: int = 0
    open_dead_letters: int = 0
    note_bodies: int = 0
    status_history: int = 0
    identity_events: int = 0
    audit_log: int = 0
    traces: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionWindows:
        return cls(
            ledger=settings.dedup_retention_days,
            dead_letters=settings.dead_letter_retention_days,
            open_dead_letters=settings.open_dead_letter_retention_days,
            note_bodies=settings.note_body_retention_days,
            status_history=settings.status_history_retention_days,
            identity_events=settings.identity_event_retention_days,
            audit_log=settings.audit_retention_days,
            traces=settings.trace_retention_days,
        )

    def days(self, target: PurgeTarget) -> int:
        days: int = getattr(self, target)
        return days


@dataclass(frozen=True, slots=True)
class Purged:
    """Rows removed (or, for note bodies, blanked) per target; absent: window 0."""

    counts: dict[PurgeTarget, int] = field(default_factory=dict)

    @property
    def ledger(self) -> int:
        return self.counts.get("ledger", 0)

    @property
    def dead_letters(self) -> int:
        return self.counts.get("dead_letters", 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Purgeable(Protocol):
    async def purge(self, target: PurgeTarget, older_than: datetime) -> int: ...

    async def record_audit(
        self, *, actor: str, role: str, action: str, target: str, detail: str
    ) -> None: ...


async def purge_target(conn: AsyncConnection, target: PurgeTarget, older_than: datetime) -> int:
    """Remove ``target``'s rows older than ``older_than``; return how many."""
    if target == "ledger":
        return await ledger.purge_ledger(conn, older_than)
    if target == "dead_letters":
        return await dead_letters.purge_dead_letters(conn, older_than)
    if target == "open_dead_letters":
        return await dead_letters.purge_open_dead_letters(conn, older_than)
    if target == "audit_log":
        return await audit.purge_audit(conn, older_than)
    stmt: Update | Delete
    if target == "note_bodies":
        stmt = (
            update(crm_notes)
            .where(crm_notes.c.created_at < older_than, crm_notes.c.body.is_not(None))
            .values(body=None)
        )
    elif target == "status_history":
        stmt = delete(message_statuses).where(message_statuses.c.updated_at < older_than)
    elif target == "identity_events":
        stmt = delete(identity_events).where(identity_events.c.at < older_than)
    else:
        stmt = delete(event_traces).where(event_traces.c.outcome_at < older_than)
    return int((await conn.execute(stmt)).rowcount)


async def purge_expired(
    store: Purgeable,
    *,
    now: datetime,
    windows: RetentionWindows,
) -> Purged:
    """Purge every target with a window; audit each purge that removed rows.

    May raise StoreUnavailable (what was purged before stays purged, and audited).
    """
    counts: dict[PurgeTarget, int] = {}
    for target in PURGE_TARGETS:
        days = windows.days(target)
        if days <= 0:
            continue
        cutoff = now - timedelta(days=days)
        removed = await store.purge(target, cutoff)
        counts[target] = removed
        if removed:
            await store.record_audit(
                actor=RETENTION_ACTOR,
                role="system",
                action="retention.purge",
                target=target,
                detail=f"{removed} removed, older than {cutoff:%Y-%m-%dT%H:%M:%SZ} ({days} d)",
            )
    return Purged(counts)
