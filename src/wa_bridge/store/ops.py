"""What the ops tools read and write besides the worker's batches: traces, the audit log,
alert incidents, worker heartbeats, account signals, bulk replay runs.

Reached as ``store.ops`` (an :class:`OpsStore` on the state store's engine). Every method
opens its own connection (one transaction for writes) and may raise StoreUnavailable.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wa_bridge.store import alerts, audit, dead_letters, heartbeats, replay_runs, traces
from wa_bridge.store.api import AccountSignal, DeadLetter, EventTrace
from wa_bridge.store.db import store_errors

__all__ = ["OpsStore"]

P = ParamSpec("P")
T = TypeVar("T")
Query = Callable[Concatenate[AsyncConnection, P], Awaitable[T]]  # a store module's function


class OpsStore:
    """Ops queries on one engine; the engine belongs to the state store (not closed here)."""

    def __init__(self, engine: AsyncEngine, *, now: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self._now = now or (lambda: datetime.now(UTC))

    @contextlib.asynccontextmanager
    async def _connection(self, what: str, *, write: bool) -> AsyncIterator[AsyncConnection]:
        """A connection of its own (a transaction when ``write``); ``what`` names it in
        errors."""
        with store_errors(what):
            async with self.engine.begin() if write else self.engine.connect() as conn:
                yield conn

    async def _read(self, what: str, query: Query[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        async with self._connection(what, write=False) as conn:
            return await query(conn, *args, **kwargs)

    async def _write(self, what: str, change: Query[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        async with self._connection(what, write=True) as conn:
            return await change(conn, *args, **kwargs)

    # --- traces -------------------------------------------------------------------------

    async def find_traces(
        self,
        *,
        ids: Sequence[str] = (),
        contact_ids: Sequence[str] = (),
        contact_hashes: Sequence[str] = (),
        limit: int = 200,
    ) -> list[EventTrace]:
        return await self._read(
            "find_traces",
            traces.find_traces,
            ids=ids,
            contact_ids=contact_ids,
            contact_hashes=contact_hashes,
            limit=limit,
        )

    async def dead_letters_about(
        self, *, ids: Sequence[str] = (), contact_keys: Sequence[str] = (), limit: int = 200
    ) -> list[DeadLetter]:
        return await self._read(
            "dead_letters_about",
            dead_letters.dead_letters_about,
            ids=ids,
            contact_keys=contact_keys,
            limit=limit,
        )

    async def ledger_entries(self, event_ids: Sequence[str]) -> list[traces.LedgerEntry]:
        return await self._read("ledger_entries", traces.ledger_entries, event_ids)

    async def contacts_of_identifier(self, kind: str, value: str) -> list[str]:
        return await self._read(
            "contacts_of_identifier", traces.contacts_of_identifier, kind, value
        )

    # --- figures --------------------------------------------------------------------------

    async def count_open_dead_letters(self) -> int:
        return await self._read("count_open_dead_letters", dead_letters.count_open)

    async def latest_signals(self) -> list[AccountSignal]:
        return await self._read("latest_signals", traces.latest_signals)

    async def events_per_minute(self, minutes: int) -> list[tuple[int, int]]:
        now = self._now()
        return await self._read(
            "events_per_minute",
            heartbeats.events_per_minute,
            since=now - timedelta(minutes=minutes),
            now=now,
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
        await self._write(
            "record_heartbeat",
            heartbeats.record_heartbeat,
            worker_id=worker_id,
            started_at=started_at,
            now=now,
            figures=figures,
            forget_before=now - timedelta(seconds=forget_after_s),
        )

    async def list_heartbeats(self) -> list[heartbeats.Heartbeat]:
        return await self._read("list_heartbeats", heartbeats.list_heartbeats)

    # --- audit --------------------------------------------------------------------------

    async def list_audit(self, flt: audit.AuditFilter) -> list[audit.AuditEntry]:
        return await self._read("list_audit", audit.list_audit, flt)

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
        return await self._write(
            "open_incident",
            alerts.open_incident,
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
        return await self._write(
            "refresh_incident",
            alerts.refresh_incident,
            key=key,
            summary=summary,
            owner=owner,
            now=self._now(),
            stale_before=stale_before,
        )

    async def resolve_incident(self, *, key: str, owner: str, stale_before: datetime) -> bool:
        return await self._write(
            "resolve_incident",
            alerts.resolve_incident,
            key=key,
            owner=owner,
            now=self._now(),
            stale_before=stale_before,
        )

    async def mark_notified(self, *, key: str, state: alerts.IncidentState) -> None:
        await self._write("mark_notified", alerts.mark_notified, key=key, state=state)

    async def list_incidents(
        self,
        *,
        owner: str | None = None,
        unnotified: bool = False,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[alerts.Incident]:
        return await self._read(
            "list_incidents",
            alerts.list_incidents,
            owner=owner,
            unnotified=unnotified,
            since=since,
            limit=limit,
        )

    # --- bulk replay runs -------------------------------------------------------------------

    async def start_replay_run(
        self, *, actor: str, selection: Mapping[str, Any]
    ) -> replay_runs.ReplayRun:
        return await self._write(
            "start_replay_run",
            replay_runs.start_run,
            actor=actor,
            selection=selection,
            now=self._now(),
        )

    async def advance_replay_run(
        self, run_id: int, *, cursor: int, replayed: int, failed: int, held: int
    ) -> None:
        await self._write(
            "advance_replay_run",
            replay_runs.advance_run,
            run_id,
            cursor=cursor,
            replayed=replayed,
            failed=failed,
            held=held,
            now=self._now(),
        )

    async def finish_replay_run(self, run_id: int) -> None:
        await self._write("finish_replay_run", replay_runs.finish_run, run_id, now=self._now())

    async def replay_run(self, run_id: int | None = None) -> replay_runs.ReplayRun | None:
        """Run ``run_id``, or the last one that did not finish."""
        with store_errors("replay_run"):
            async with self.engine.connect() as conn:
                if run_id is None:
                    return await replay_runs.last_open_run(conn)
                return await replay_runs.get_run(conn, run_id)
