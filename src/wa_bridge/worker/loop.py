"""The consume loop: fetch all the time, apply batches across partitions, commit per partition.

Three kinds of task share the worker's state, on one event loop:

- the **fetcher** asks Kafka for what is ready and appends each partition's records to its
  :class:`~wa_bridge.worker.partition.PartitionState`. A main-topic partition pauses at
  ``partition_cap`` unfinished records and resumes once half of them are finished; a
  retry-topic partition pauses while its records wait until due (each fetched retry
  record parks its contact: see :class:`~wa_bridge.worker.retry.ParkingLot`).
- the **dispatcher** (the body of :meth:`Worker.run` and :meth:`Worker.run_until_idle`)
  forms batches of the ready records of partitions that are not in a batch already,
  oldest first, up to ``batch_max``: at once when ``batch_max`` are ready or a retry
  record is due (it waited its delay already), else once the oldest has waited
  ``linger_s`` (burst mode and a drain never linger). At most ``batches_in_flight``
  batches run at a time.
- each **batch** applies its records (:class:`~wa_bridge.worker.batch.BatchProcessor`),
  then marks each of its partitions finished up to its last record; the **committer**
  commits, in one call, the next offset of every partition that moved.

A partition is in at most one batch and gives it a prefix of its records, so a
partition's events are applied in offset order (per contact: in order), a slow batch
holds back only its own partitions, and an offset is committed only once everything
before it is finished (applied, a duplicate or stale, in a retry topic, or
dead-lettered).

Stop (SIGTERM): no new batch; the batches in flight finish within ``shutdown_grace_s``
(then they are cancelled: nothing of them is committed); finished offsets are committed.
Records fetched but not in a batch are not committed: the next reader reads them again.
With ``drain_s`` (``wa-bridge dev`` on Ctrl-C) the worker first keeps going until it is
caught up, retry records due at once, for up to ``drain_s`` (a spent CRM budget is not
waited for then: its events are dead-lettered). While the CRM's budget is spent
(``CrmQuotaExhausted``) every partition is paused and no batch starts; the batch that met
it waits and tries again (:mod:`~wa_bridge.worker.quota_pause`). A rebalance waits for
the batches that hold a revoked partition, commits, and forgets the partition. The DLQ guard
is checked after every batch; when it trips the worker stops as on SIGTERM and raises
``DlqLimitExceeded``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Final

from wa_bridge.bus.consumer import Delivery, RecordConsumer, TopicPartition
from wa_bridge.bus.topics import retry_topic
from wa_bridge.clock import SYSTEM_CLOCK, Clock, epoch_ms
from wa_bridge.errors import BusUnavailable, DlqLimitExceeded
from wa_bridge.log import get_logger
from wa_bridge.worker.batch import BatchProcessor
from wa_bridge.worker.commits import OffsetCommitter, cause_name
from wa_bridge.worker.dlq import DlqGuard
from wa_bridge.worker.options import WorkerOptions
from wa_bridge.worker.outcomes import TALLY_FIELDS, Tally
from wa_bridge.worker.partition import PartitionState

__all__ = ["Worker", "WorkerOptions", "WorkerStats"]

log = get_logger("worker")

IDLE_POLL_MS: Final = 500
BURST_POLL_MS: Final = 100
FETCH_RETRY_S: Final = 0.5
FETCH_THROTTLE_MAX_S: Final = 0.5  # a fetch waits at most this for a batch to end
ALL_DUE_MS: Final = 2**62  # while draining, every retry record is due
Taken = list[tuple[PartitionState, list[Delivery]]]


@dataclass(slots=True)
class WorkerStats(Tally):
    """Counts since start (one event per counted outcome), batches and commit calls."""

    batches: int = 0
    commits: int = 0

    def add(self, tally: Tally) -> None:
        """Add one batch's tally."""
        for name in TALLY_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(tally, name))
        self.batches += 1


class Worker:
    """Consumes the main topic and its retry topics in the consumer group.

    Build it with an unstarted consumer, then start the consumer on :attr:`topics` with
    the worker as its rebalance listener; ``run(stop)`` runs until ``stop`` is set,
    ``run_until_idle()`` until caught up (tests, burst mode). One of them at a time.
    """

    def __init__(
        self,
        options: WorkerOptions,
        *,
        consumer: RecordConsumer,
        processor: BatchProcessor,
        guard: DlqGuard | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.options = options
        self.consumer = consumer
        self.processor = processor
        self.guard = guard or DlqGuard()
        self.clock = clock
        self.stats = WorkerStats()
        self.main_topic = options.main_topic
        self.retry_topics = [
            retry_topic(self.main_topic, n) for n in range(1, options.retry_levels + 1)
        ]
        self._states: dict[TopicPartition, PartitionState] = {}
        self._in_flight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()  # the dispatcher has something to look at
        self._batch_done = asyncio.Event()  # a batch ended (rebalance waits on it)
        self._committer = OffsetCommitter(consumer, self._committed, clock)
        self._session = _Session()
        processor.quota.listen(self._on_quota)

    @property
    def topics(self) -> list[str]:
        return [self.main_topic, *self.retry_topics]

    # --- running ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, drain_s: float = 0.0) -> None:
        """Consume until ``stop`` is set; then (with ``drain_s``) keep going until caught
        up, for at most ``drain_s``; then finish the batches in flight (bounded by
        ``shutdown_grace_s``) and commit. Raises DlqLimitExceeded when the guard trips
        (not while draining), and any bug of ours."""
        await self._consume(_Session(burst=False), stop=stop, drain_s=drain_s)
        log.info("worker_stopped", **self._stats_fields())

    async def run_until_idle(self, *, timeout_s: float = 60.0) -> WorkerStats:
        """Burst mode: consume until every assigned partition is caught up and no retry
        record is waiting; returns the stats. Raises TimeoutError after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            await self._consume(_Session(burst=True), stop=None)
        return self.stats

    async def _consume(
        self, session: _Session, *, stop: asyncio.Event | None, drain_s: float = 0.0
    ) -> None:
        self._session = session
        try:
            async with asyncio.TaskGroup() as group:
                session.group = group
                helpers = [
                    group.create_task(self._fetch_loop(), name="worker-fetch"),
                    group.create_task(self._committer.run(self._states), name="worker-commit"),
                ]
                if stop is not None:
                    helpers.append(group.create_task(self._watch(stop, drain_s)))
                try:
                    await self._dispatch()
                    await self._finish_in_flight()
                finally:
                    for helper in helpers:
                        helper.cancel()
        except BaseExceptionGroup as group_error:
            if len(group_error.exceptions) == 1:  # re-raise our error classes as themselves
                raise group_error.exceptions[0] from None
            raise
        finally:
            await self._committer.commit(list(self._states.values()))
        if session.failure is not None:
            raise session.failure

    async def _watch(self, stop: asyncio.Event, drain_s: float) -> None:
        await stop.wait()
        session = self._session
        session.stop_requested = True
        if drain_s > 0:
            session.drain_until = self.clock.monotonic() + drain_s
            session.burst = True
            session.caught_up = False
            log.info("worker_draining", timeout_s=drain_s)
            # the broker may be about to go away (dev): a spent CRM budget dead-letters
            self.processor.quota.give_up()
        self._wake.set()

    # --- dispatching ------------------------------------------------------------------

    async def _dispatch(self) -> None:
        while True:
            self._wake.clear()
            if self._should_end():
                return
            self._start_batches()
            delay = self._next_wake_s()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _should_end(self) -> bool:
        s = self._session
        if s.failure is not None:
            return True
        if s.is_draining:
            assert s.drain_until is not None
            if self.clock.monotonic() >= s.drain_until:
                log.warning("worker_drain_incomplete", timeout=True, **self._unfinished())
                return True
        elif s.stop_requested:
            return True
        return s.burst and s.caught_up and self._is_quiet()

    def _start_batches(self) -> None:
        group = self._session.group
        assert group is not None
        if self.processor.quota.is_paused:  # the paused batch tries again; nothing new
            return
        while len(self._in_flight) < self.options.batches_in_flight:
            taken = self._form_batch()
            if not taken:
                return
            self._in_flight.add(group.create_task(self._apply_batch(taken)))

    def _form_batch(self) -> Taken:
        """Take the records of the next batch, or none while it should linger."""
        s = self._session
        s.linger_until = None
        now_s = self.clock.monotonic()
        now_ms = ALL_DUE_MS if s.is_draining else epoch_ms(self.clock)
        ready: list[tuple[float, PartitionState, int]] = []
        for state in self._states.values():
            if state.busy or state.revoking:
                continue
            n = state.ready(now_ms)
            if n:
                arrived = state.first_arrival()
                # a due retry record has waited its delay already: it never lingers
                ready.append((-1.0 if state.is_retry or arrived is None else arrived, state, n))
        if not ready:
            return []
        oldest = min(arrived for arrived, _, _ in ready)
        total = sum(n for _, _, n in ready)
        linger_until = oldest + self.options.linger_s
        flush = total >= self.options.batch_max or s.burst
        if not (flush or oldest < 0 or now_s >= linger_until):
            s.linger_until = linger_until
            return []
        ready.sort(key=lambda entry: entry[0])
        room = self.options.batch_max
        taken: Taken = []
        for _, state, n in ready:
            if room <= 0:
                break
            records = state.take(min(n, room))
            room -= len(records)
            taken.append((state, records))
        return taken

    def _next_wake_s(self) -> float | None:
        """Seconds until a lingering batch is due, a retry record is due, or the drain
        ends; None: only an event (records, a finished batch, a stop) wakes us."""
        s = self._session
        now_s = self.clock.monotonic()
        waits: list[float] = []
        if s.drain_until is not None:
            waits.append(s.drain_until - now_s)
        has_room = len(self._in_flight) < self.options.batches_in_flight
        if has_room and s.linger_until is not None:
            waits.append(s.linger_until - now_s)
        if has_room and not s.is_draining:
            dues = [
                due
                for state in self._states.values()
                if not (state.busy or state.revoking) and (due := state.next_due_ms()) is not None
            ]
            if dues:
                waits.append((min(dues) - epoch_ms(self.clock)) / 1000)
        return max(0.0, min(waits)) if waits else None

    async def _apply_batch(self, taken: Taken) -> None:
        task = asyncio.current_task()
        assignments = [state.assignment for state, _ in taken]
        try:
            tally = await self.processor.process([d for _, records in taken for d in records])
        except BaseException:
            for (state, records), assignment in zip(taken, assignments, strict=True):
                state.in_batch = 0
                if assignment == state.assignment:  # not finished: back in front, in order
                    state.waiting.extendleft((0.0, d) for d in reversed(records))
            raise
        finally:
            if task is not None:
                self._in_flight.discard(task)
            self._batch_done.set()
            self._wake.set()
        for (state, records), assignment in zip(taken, assignments, strict=True):
            state.finish(records[-1].offset, assignment)
            if state.revoking:
                self._forget(state)
            else:
                self._resume_if_drained(state)
        self._count(tally)
        self._committer.mark_due()

    def _count(self, tally: Tally) -> None:
        self.stats.add(tally)
        for _ in range(tally.dead_lettered):
            self.guard.record(True)
        for _ in range(tally.finished):
            self.guard.record(False)
        s = self._session
        if s.failure is None and not s.is_draining:  # a drain ends in the CRM or the DLQ
            try:
                self.guard.check()
            except DlqLimitExceeded as exc:
                s.failure = exc

    async def _finish_in_flight(self) -> None:
        """Wait for the batches in flight, at most ``shutdown_grace_s``; cancel the rest."""
        if not self._in_flight:
            return
        grace = self.options.shutdown_grace_s
        _, late = await asyncio.wait(set(self._in_flight), timeout=grace)
        if late:
            log.warning("worker_drain_timed_out", grace_s=grace, batches=len(late))
            for task in late:
                task.cancel()
            await asyncio.wait(late)

    def _is_quiet(self) -> bool:
        return not self._in_flight and not any(s.waiting for s in self._states.values())

    def _unfinished(self) -> dict[str, int]:
        waiting = sum(len(s.waiting) for s in self._states.values())
        return {"waiting": waiting, "batches": len(self._in_flight)}

    # --- fetching ---------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        s = self._session
        while True:
            poll_ms = BURST_POLL_MS if s.burst else IDLE_POLL_MS
            fetched = await self._fetch(poll_ms)
            if fetched:
                s.caught_up = False
                self._accept(fetched)
            elif s.burst and self._is_quiet():
                s.caught_up = await self._is_caught_up() and self._is_quiet()
            self._wake.set()
            await self._throttle(sum(len(records) for records in fetched.values()))

    async def _throttle(self, fetched: int) -> None:
        """Before the next fetch. When the last one drained what the broker had ready and
        no new batch could start now (no free slot, or every main-topic partition is in a
        batch), wait for a batch to end: records are then fetched once per batch instead
        of a few at a time as they arrive (which kept the broker busy answering tiny
        fetches: bench/e2e, Tansu). A full fetch means more is ready: fetch on (up to the
        partition cap), so the next batch never waits for its records."""
        await asyncio.sleep(0)  # let the batches run between fetches that return at once
        if fetched >= self.options.batch_max:
            return
        slots_full = len(self._in_flight) >= self.options.batches_in_flight
        if not slots_full and any(
            tp.topic == self.main_topic and not self._is_busy(tp)
            for tp in self.consumer.assignment()
        ):
            return
        self._batch_done.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FETCH_THROTTLE_MAX_S):
                await self._batch_done.wait()

    def _is_busy(self, tp: TopicPartition) -> bool:
        state = self._states.get(tp)
        return state is not None and state.busy

    async def _fetch(self, poll_ms: int) -> dict[TopicPartition, list[Delivery]]:
        try:
            return await self.consumer.getmany(
                timeout_ms=poll_ms, max_records=self.options.batch_max
            )
        except BusUnavailable as exc:
            log.warning("fetch_failed", error=cause_name(exc))
            await self.clock.sleep(FETCH_RETRY_S)
            return {}

    def _accept(self, fetched: dict[TopicPartition, list[Delivery]]) -> None:
        now_s = self.clock.monotonic()
        for tp, deliveries in fetched.items():
            state = self._states.get(tp)
            if state is None:
                state = self._states[tp] = PartitionState(tp, is_retry=tp.topic != self.main_topic)
            state.add(deliveries, now_s)
            if state.is_retry:
                for d in deliveries:
                    self.processor.note_in_retry(d)
                self._pause(state)  # nothing more from it until these are due and done
            elif state.unfinished >= self.options.partition_cap:
                self._pause(state)
            if self.processor.quota.is_paused and tp in self.consumer.assignment():
                self.consumer.pause(tp)  # fetched before the pause: nothing more

    def _pause(self, state: PartitionState) -> None:
        if not state.paused and state.tp in self.consumer.assignment():
            self.consumer.pause(state.tp)
            state.paused = True

    def _on_quota(self, paused: bool) -> None:
        """The CRM's budget is spent (``paused``) or back: stop or restart fetching every
        assigned partition (one paused for its own reason stays paused)."""
        for tp in self.consumer.assignment():
            if paused:
                self.consumer.pause(tp)
            else:
                state = self._states.get(tp)
                if state is None or not state.paused:
                    self.consumer.resume(tp)
        self._wake.set()

    def _resume_if_drained(self, state: PartitionState) -> None:
        if not state.paused:
            return
        if state.is_retry:
            drained = not state.waiting and not state.busy
        else:
            drained = state.unfinished <= self.options.partition_cap // 2
        if drained and self.processor.quota.is_paused:
            state.paused = False  # its own reason is gone; the quota's resume restarts it
            return
        if drained and state.tp in self.consumer.assignment():
            self.consumer.resume(state.tp)
            state.paused = False

    async def _is_caught_up(self) -> bool:
        assigned = list(self.consumer.assignment())
        if not assigned:
            return False
        try:
            ends = await self.consumer.end_offsets(assigned)
            for tp in assigned:
                if await self.consumer.position(tp) < ends[tp]:
                    return False
        except BusUnavailable:
            return False
        return True

    # --- rebalance --------------------------------------------------------------------

    async def on_assigned(self, assigned: list[TopicPartition]) -> None:
        """Every assignment starts the consumer again at the committed offsets: what we
        fetched before is fetched again. A partition held without being revoked first
        (the member was reset: a broker restart, a missed heartbeat) is forgotten too."""
        now = set(assigned)
        lost: set[int] = set()
        for state in list(self._states.values()):
            state.restart()
            if state.tp not in now:
                state.revoking = True
                self._forget(state)
                if state.tp.topic == self.main_topic:
                    lost.add(state.tp.partition)
        for partition in lost:
            self.processor.parking.drop_partition(partition)
        self._committer.resume()
        log.info("partitions_assigned", partitions=sorted(_name(tp) for tp in assigned))

    async def on_revoked(self, revoked: list[TopicPartition]) -> None:
        """Let the batches holding revoked partitions finish, commit them, then forget the
        partitions: their waiting records and retry records are the next owner's."""
        states = [self._states[tp] for tp in revoked if tp in self._states]
        for state in states:
            state.revoking = True
        while any(state.busy for state in states):
            self._batch_done.clear()
            await self._batch_done.wait()
        await self._committer.commit(states)
        for state in states:
            self._forget(state)
        for partition in {tp.partition for tp in revoked if tp.topic == self.main_topic}:
            self.processor.parking.drop_partition(partition)
        log.info("partitions_revoked", partitions=sorted(_name(tp) for tp in revoked))

    def _committed(self) -> None:
        self.stats.commits += 1

    def _forget(self, state: PartitionState) -> None:
        """Drop a revoked partition once its batch in flight (if any) has finished."""
        if not state.busy and self._states.get(state.tp) is state:
            del self._states[state.tp]

    def _stats_fields(self) -> dict[str, int]:
        return {name: getattr(self.stats, name) for name in TALLY_FIELDS}


@dataclass(slots=True)
class _Session:
    """The state of one ``run`` or ``run_until_idle``."""

    burst: bool = False  # end once caught up
    group: asyncio.TaskGroup | None = None
    caught_up: bool = False  # nothing more to fetch, seen while quiet
    stop_requested: bool = False
    drain_until: float | None = None  # monotonic end of a drain after stop
    linger_until: float | None = None  # when the lingering batch is due
    failure: DlqLimitExceeded | None = None

    @property
    def is_draining(self) -> bool:
        return self.drain_until is not None


def _name(tp: TopicPartition) -> str:
    return f"{tp.topic}-{tp.partition}"
