"""What the ops tools read and write besides the worker's batches: traces, the audit log,
alert incidents, worker heartbeats, account signals, bulk replay runs.

Reached as ``store.ops`` (an :class:`OpsStore` on the state store's engine). Every method
opens its own connection (one transaction for writes) and may raise StoreUnavailable.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wa_bridge.store import alerts, audit, dead_letters, heartbeats, replay_runs, traces
from wa_bridge.store.db import store_errors

__all__ = ["OpsStore"]

P = ParamSpec("P")
T = TypeVar("T")
Query = Callable[Concatenate[AsyncConnection, P], Awaitable[T]]  # a store module's function


class _On(Generic[P, T]):
    """An :class:`OpsStore` method: ``run(ops, conn, ...)`` on a connection of its own (a
    transaction when ``write``); errors name the method. Made by :func:`_query` and
    :func:`_stamped`."""

    def __init__(
        self, run: Callable[Concatenate[OpsStore, AsyncConnection, P], Awaitable[T]], *, write: bool
    ) -> None:
        self._run = run
        self._write = write
        self._what = run.__name__

    def __set_name__(self, owner: type[OpsStore], name: str) -> None:
        self._what = name

    def __get__(self, ops: OpsStore, owner: type[OpsStore]) -> Callable[P, Awaitable[T]]:
        run, what, write = self._run, self._what, self._write

        async def call(*args: P.args, **kwargs: P.kwargs) -> T:
            async with ops._connection(what, write=write) as conn:
                return await run(ops, conn, *args, **kwargs)

        return call


def _query(query: Query[P, T], *, write: bool = False) -> _On[P, T]:
    """A method that takes the arguments of the store module's function ``query``."""

    async def run(ops: OpsStore, conn: AsyncConnection, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await query(conn, *args, **kwargs)

    return _On(run, write=write)


def _stamped(
    change: Callable[Concatenate[AsyncConnection, datetime, P], Awaitable[T]],
) -> _On[P, T]:
    """A write whose store function takes the time after the connection: the OpsStore's
    clock gives it; the method takes the rest of ``change``'s arguments."""

    async def run(ops: OpsStore, conn: AsyncConnection, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await change(conn, ops._now(), *args, **kwargs)

    return _On(run, write=True)


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

    find_traces = _query(traces.find_traces)
    dead_letters_about = _query(dead_letters.dead_letters_about)
    ledger_entries = _query(traces.ledger_entries)
    contacts_of_identifier = _query(traces.contacts_of_identifier)

    # --- figures --------------------------------------------------------------------------

    count_open_dead_letters = _query(dead_letters.count_open)
    latest_signals = _query(traces.latest_signals)

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

    list_heartbeats = _query(heartbeats.list_heartbeats)

    # --- audit --------------------------------------------------------------------------

    list_audit = _query(audit.list_audit)

    async def failed_replays(self, dead_letter_ids: Sequence[int]) -> dict[int, int]:
        """Per dead letter: replays that failed (the loop guard's count, from the audit)."""
        targets = [f"dead_letter:{i}" for i in dead_letter_ids]
        async with self._connection("failed_replays", write=False) as conn:
            counts = await audit.count_by_target(
                conn, action="dlq.replay", targets=targets, detail_prefix="failed"
            )
        return {int(t.split(":", 1)[1]): n for t, n in counts.items()}

    # --- alert incidents ------------------------------------------------------------------

    open_incident = _stamped(alerts.open_incident)
    refresh_incident = _stamped(alerts.refresh_incident)
    resolve_incident = _stamped(alerts.resolve_incident)
    mark_notified = _query(alerts.mark_notified, write=True)
    list_incidents = _query(alerts.list_incidents)

    # --- bulk replay runs -------------------------------------------------------------------

    start_replay_run = _stamped(replay_runs.start_run)
    advance_replay_run = _stamped(replay_runs.advance_run)
    finish_replay_run = _stamped(replay_runs.finish_run)

    async def replay_run(self, run_id: int | None = None) -> replay_runs.ReplayRun | None:
        """Run ``run_id``, or the last one that did not finish."""
        async with self._connection("replay_run", write=False) as conn:
            if run_id is None:
                return await replay_runs.last_open_run(conn)
            return await replay_runs.get_run(conn, run_id)
