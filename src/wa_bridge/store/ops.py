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
from wa_bridge.store._methods import connection, query, stamped

__all__ = ["OpsStore"]


class OpsStore:
    """Ops queries on one engine; the engine belongs to the state store (not closed here)."""

    def __init__(self, engine: AsyncEngine, *, now: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self._now = now or (lambda: datetime.now(UTC))

    # --- traces -------------------------------------------------------------------------

    find_traces = query(traces.find_traces)
    dead_letters_about = query(dead_letters.dead_letters_about)
    ledger_entries = query(traces.ledger_entries)
    contacts_of_identifier = query(traces.contacts_of_identifier)

    # --- figures --------------------------------------------------------------------------

    count_open_dead_letters = query(dead_letters.count_open)
    latest_signals = query(traces.latest_signals)

    async def events_per_minute(self, minutes: int) -> list[tuple[int, int]]:
        now = self._now()
        async with connection(self.engine, "events_per_minute", write=False) as conn:
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
        async with connection(self.engine, "record_heartbeat", write=True) as conn:
            await heartbeats.record_heartbeat(
                conn,
                worker_id=worker_id,
                started_at=started_at,
                now=now,
                figures=figures,
                forget_before=now - timedelta(seconds=forget_after_s),
            )

    list_heartbeats = query(heartbeats.list_heartbeats)

    # --- audit --------------------------------------------------------------------------

    list_audit = query(audit.list_audit)

    async def failed_replays(self, dead_letter_ids: Sequence[int]) -> dict[int, int]:
        """Per dead letter: replays that failed (the loop guard's count, from the audit)."""
        targets = [f"dead_letter:{i}" for i in dead_letter_ids]
        async with connection(self.engine, "failed_replays", write=False) as conn:
            counts = await audit.count_by_target(
                conn, action="dlq.replay", targets=targets, detail_prefix="failed"
            )
        return {int(t.split(":", 1)[1]): n for t, n in counts.items()}

    # --- alert incidents ------------------------------------------------------------------

    open_incident = stamped(alerts.open_incident)
    refresh_incident = stamped(alerts.refresh_incident)
    resolve_incident = stamped(alerts.resolve_incident)
    mark_notified = query(alerts.mark_notified, write=True)
    list_incidents = query(alerts.list_incidents)

    # --- bulk replay runs -------------------------------------------------------------------

    start_replay_run = stamped(replay_runs.start_run)
    advance_replay_run = stamped(replay_runs.advance_run)
    finish_replay_run = stamped(replay_runs.finish_run)

    async def replay_run(self, run_id: int | None = None) -> replay_runs.ReplayRun | None:
        """Run ``run_id``, or the last one that did not finish."""
        async with connection(self.engine, "replay_run", write=False) as conn:
            if run_id is None:
                return await replay_runs.last_open_run(conn)
            return await replay_runs.get_run(conn, run_id)
