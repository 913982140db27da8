"""What the ops tools read and write besides the worker's batches: traces, the audit log,
alert incidents, worker heartbeats, account signals, bulk replay runs.

Reached as ``store.ops`` (an :class:`OpsStore` on the state store's engine). Every method
opens its own connection (one transaction for writes) and may raise StoreUnavailable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from wa_bridge.store import alerts, audit, dead_letters, heartbeats, replay_runs, traces
from wa_bridge.store.api import AccountSignal, DeadLetter, EventTrace
from wa_bridge.store.db import store_errors

__all__ = ["OpsStore"]


class OpsStore:
    """Ops queries on one engine; the engine belongs to the state store (not closed here)."""

    def __init__(self, engine: AsyncEngine, *, now: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self._now = now or (lambda: datetime.now(UTC))

    # --- traces -------------------------------------------------------------------------

    async def find_traces(
        self,
        *,
        ids: Sequence[str] = (),
        contact_ids: Sequence[str] = (),
        contact_hashes: Sequence[str] = (),
        limit: int = 200,
    ) -> list[EventTrace]:
        with store_errors("find_traces"):
            async with self.engine.connect() as conn:
                return await traces.find_traces(
                    conn,
                    ids=ids,
                    contact_ids=contact_ids,
                    contact_hashes=contact_hashes,
                    limit=limit,
                )

    async def dead_letters_about(
        self, *, ids: Sequence[str] = (), contact_keys: Sequence[str] = (), limit: int = 200
    ) -> list[DeadLetter]:
        with store_errors("dead_letters_about"):
            async with self.engine.connect() as conn:
                return await dead_letters.dead_letters_about(
                    conn, ids=ids, contact_keys=contact_keys, limit=limit
                )

    async def ledger_entries(self, event_ids: Sequence[str]) -> list[traces.LedgerEntry]:
        with store_errors("ledger_entries"):
            async with self.engine.connect() as conn:
                return await traces.ledger_entries(conn, event_ids)

    async def contacts_of_identifier(self, kind: str, value: str) -> list[str]:
        with store_errors("contacts_of_identifier"):
            async with self.engine.connect() as conn:
                return await traces.contacts_of_identifier(conn, kind, value)

    # --- figures --------------------------------------------------------------------------

    async def count_open_dead_letters(self) -> int:
        with store_errors("count_open_dead_letters"):
            async with self.engine.connect() as conn:
                return await dead_letters.count_open(conn)

    async def latest_signals(self) -> list[AccountSignal]:
        with store_errors("latest_signals"):
            async with self.engine.connect() as conn:
                return await traces.latest_signals(conn)

    async def events_per_minute(self, minutes: int) -> list[tuple[int, int]]:
        now = self._now()
        with store_errors("events_per_minute"):
            async with self.engine.connect() as conn:
                return await heartbeats.events_per_minute(
                    conn, since=now - timedelta(minutes=minutes), now=now
                )

    async def record_heartbeat(
        self,
        *,
        worker_id: str,
        started_at: datetime,
        figures: Mapping[str, Any],
        forget_after_s: float,
    ) -> None:
        now = self._now()
        with store_errors("record_heartbeat"):
            async with self.engine.begin() as conn:
                await heartbeats.record_heartbeat(
                    conn,
                    worker_id=worker_id,
                    started_at=started_at,
                    now=now,
                    figures=figures,
                    forget_before=now - timedelta(seconds=forget_after_s),
                )

    async def list_heartbeats(self) -> list[heartbeats.Heartbeat]:
        with store_errors("list_heartbeats"):
            async with self.engine.connect() as conn:
                return await heartbeats.list_heartbeats(conn)

    # --- audit --------------------------------------------------------------------------

    async def list_audit(self, flt: audit.AuditFilter) -> list[audit.AuditEntry]:
        with store_errors("list_audit"):
            async with self.engine.connect() as conn:
                return await audit.list_audit(conn, flt)

    async def failed_replays(self, dead_letter_ids: Sequence[int]) -> dict[int, int]:
        """Per dead letter: replays that failed (the loop guard's count, from the audit)."""
        targets = [f"dead_letter:{i}" for i in dead_letter_ids]
        with store_errors("failed_replays"):
            async with self.engine.connect() as conn:
                counts = await audit.count_by_target(
                    conn, action="dlq.replay", targets=targets, detail_prefix="failed"
                )
        return {int(t.split(":", 1)[1]): n for t, n in counts.items()}

    # --- alert incidents ------------------------------------------------------------------

    async def open_incident(
        self,
        *,
        key: str,
        rule: str,
        labels: Mapping[str, str],
        summary: str,
        severity: str,
        owner: str,
    ) -> bool:
        with store_errors("open_incident"):
            async with self.engine.begin() as conn:
                return await alerts.open_incident(
                    conn,
                    key=key,
                    rule=rule,
                    labels=labels,
                    summary=summary,
                    severity=severity,
                    owner=owner,
                    now=self._now(),
                )

    async def refresh_incident(
        self, *, key: str, summary: str, owner: str, stale_before: datetime
    ) -> bool:
        with store_errors("refresh_incident"):
            async with self.engine.begin() as conn:
                return await alerts.refresh_incident(
                    conn,
                    key=key,
                    summary=summary,
                    owner=owner,
                    now=self._now(),
                    stale_before=stale_before,
                )

    async def resolve_incident(self, *, key: str, owner: str, stale_before: datetime) -> bool:
        with store_errors("resolve_incident"):
            async with self.engine.begin() as conn:
                return await alerts.resolve_incident(
                    conn, key=key, owner=owner, now=self._now(), stale_before=stale_before
                )

    async def mark_notified(self, *, key: str, state: alerts.IncidentState) -> None:
        with store_errors("mark_notified"):
            async with self.engine.begin() as conn:
                await alerts.mark_notified(conn, key=key, state=state)

    async def list_incidents(
        self,
        *,
        owner: str | None = None,
        unnotified: bool = False,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[alerts.Incident]:
        with store_errors("list_incidents"):
            async with self.engine.connect() as conn:
                return await alerts.list_incidents(
                    conn, owner=owner, unnotified=unnotified, since=since, limit=limit
                )

    # --- bulk replay runs -------------------------------------------------------------------

    async def start_replay_run(
        self, *, actor: str, selection: Mapping[str, Any]
    ) -> replay_runs.ReplayRun:
        with store_errors("start_replay_run"):
            async with self.engine.begin() as conn:
                return await replay_runs.start_run(
                    conn, actor=actor, selection=selection, now=self._now()
                )

    async def advance_replay_run(
        self, run_id: int, *, cursor: int, replayed: int, failed: int, held: int
    ) -> None:
        with store_errors("advance_replay_run"):
            async with self.engine.begin() as conn:
                await replay_runs.advance_run(
                    conn,
                    run_id,
                    cursor=cursor,
                    replayed=replayed,
                    failed=failed,
                    held=held,
                    now=self._now(),
                )

    async def finish_replay_run(self, run_id: int) -> None:
        with store_errors("finish_replay_run"):
            async with self.engine.begin() as conn:
                await replay_runs.finish_run(conn, run_id, now=self._now())

    async def replay_run(self, run_id: int | None = None) -> replay_runs.ReplayRun | None:
        """Run ``run_id``, or the last one that did not finish."""
        with store_errors("replay_run"):
            async with self.engine.connect() as conn:
                if run_id is None:
                    return await replay_runs.last_open_run(conn)
                return await replay_runs.get_run(conn, run_id)
