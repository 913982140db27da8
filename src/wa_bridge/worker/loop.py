"""The consume loop: fetch, apply per partition, route failures, commit finished offsets.

Each round fetches what is ready (``getmany``, up to ``worker_batch_max`` records per
assigned partition), applies every partition's records concurrently (one partition's
records in offset order, one transaction per ``worker_batch_max`` of them), then commits
for each partition the offset after its last finished record. A record is finished when
it took effect in the CRM (or was a duplicate/stale), was published to a retry topic, or
was dead-lettered; nothing else is ever committed past.

Retry-topic records wait in memory until due (their partition paused meanwhile, so other
partitions keep flowing). The round holds a lock; a rebalance waits for the round to end
(its offsets committed) before giving partitions up, and SIGTERM stops fetching and lets
the round finish within ``shutdown_grace_s``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from wa_bridge.bus.consumer import Delivery, RecordConsumer, TopicPartition
from wa_bridge.bus.topics import retry_topic
from wa_bridge.clock import SYSTEM_CLOCK, Clock, epoch_ms
from wa_bridge.errors import BusUnavailable
from wa_bridge.log import get_logger
from wa_bridge.settings import Settings
from wa_bridge.worker.dlq import DlqGuard
from wa_bridge.worker.partition import PartitionProcessor, Tally

__all__ = ["Worker", "WorkerOptions", "WorkerStats"]

log = get_logger("worker")

IDLE_POLL_MS: Final = 500
BURST_POLL_MS: Final = 100


@dataclass(slots=True)
class WorkerStats:
    """Counts since start (one event per counted outcome)."""

    delivered: int = 0
    duplicates: int = 0
    stale: int = 0
    retried: int = 0
    dead_lettered: int = 0
    rounds: int = 0
    commits: int = 0

    def add(self, tally: Tally) -> None:
        self.delivered += tally.delivered
        self.duplicates += tally.duplicates
        self.stale += tally.stale
        self.retried += tally.retried
        self.dead_lettered += tally.dead_lettered


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """What a :class:`Worker` reads from the settings."""

    main_topic: str
    retry_levels: int  # retry topics <main>.retry.1 … <main>.retry.<retry_levels>
    batch_max: int  # records per partition per transaction
    shutdown_grace_s: float  # how long a stop waits for the round in flight

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerOptions:
        return cls(
            main_topic=settings.kafka_topic,
            retry_levels=len(settings.retry_delays_s),
            batch_max=settings.worker_batch_max,
            shutdown_grace_s=settings.shutdown_grace_s,
        )


@dataclass
class _RetryBuffer:
    records: list[Delivery] = field(default_factory=list)


class Worker:
    """Consumes the main topic and its retry topics in the consumer group.

    Build it with an unstarted consumer, then start the consumer on :attr:`topics` with
    the worker as its rebalance listener; ``run(stop)`` runs until ``stop`` is set,
    ``run_until_idle()`` until caught up (tests, burst mode).
    """

    def __init__(
        self,
        options: WorkerOptions,
        *,
        consumer: RecordConsumer,
        processor: PartitionProcessor,
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
        self._buffers: dict[TopicPartition, _RetryBuffer] = {}
        self._lock = asyncio.Lock()
        self._stopping = False

    @property
    def topics(self) -> list[str]:
        return [self.main_topic, *self.retry_topics]

    # --- running ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; then finish the round in flight (bounded)."""
        stop_wait = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                fetched = await self._fetch()
                work = asyncio.ensure_future(self._round(fetched))
                await asyncio.wait({work, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if not work.done():
                    await self._drain(work)
                if not work.cancelled():
                    work.result()  # re-raise DlqLimitExceeded and bugs
        finally:
            stop_wait.cancel()
        log.info("worker_stopped", **self._stats_fields())

    async def _drain(self, work: asyncio.Future[None]) -> None:
        self._stopping = True
        grace = self.options.shutdown_grace_s
        try:
            await asyncio.wait_for(asyncio.shield(work), timeout=grace)
        except TimeoutError:
            log.warning("worker_drain_timed_out", grace_s=grace)
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)

    async def run_until_idle(self, *, timeout_s: float = 60.0) -> WorkerStats:
        """Burst mode: consume until every assigned partition is caught up and no retry
        record is waiting; returns the stats. Raises TimeoutError after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            while True:
                fetched = await self._fetch(poll_ms=BURST_POLL_MS)
                await self._round(fetched)
                if not fetched and await self._is_caught_up():
                    return self.stats

    async def _is_caught_up(self) -> bool:
        assigned = list(self.consumer.assignment())
        if not assigned or any(buf.records for buf in self._buffers.values()):
            return False
        ends = await self.consumer.end_offsets(assigned)
        for tp in assigned:
            if await self.consumer.position(tp) < ends[tp]:
                return False
        return True

    # --- one round --------------------------------------------------------------------

    async def _fetch(self, poll_ms: int = IDLE_POLL_MS) -> dict[TopicPartition, list[Delivery]]:
        timeout_ms = min(poll_ms, self._ms_until_next_due())
        try:
            return await self.consumer.getmany(
                timeout_ms=timeout_ms, max_records=self._max_records()
            )
        except BusUnavailable as exc:
            log.warning("fetch_failed", error=_cause_name(exc))
            await self.clock.sleep(0.5)
            return {}

    def _max_records(self) -> int:
        """``worker_batch_max`` per assigned main-topic partition: every partition can
        bring a full batch to the round (bigger transactions, fewer round trips)."""
        assigned = sum(1 for tp in self.consumer.assignment() if tp.topic == self.main_topic)
        return self.options.batch_max * max(1, assigned)

    def _ms_until_next_due(self) -> int:
        now = epoch_ms(self.clock)
        dues = [buf.records[0].due_ms for buf in self._buffers.values() if buf.records]
        if not dues:
            return IDLE_POLL_MS
        return max(0, min(dues) - now)

    async def _round(self, fetched: dict[TopicPartition, list[Delivery]]) -> None:
        async with self._lock:
            main: dict[TopicPartition, list[Delivery]] = {}
            for tp, deliveries in fetched.items():
                if tp.topic == self.main_topic:
                    main[tp] = deliveries
                else:
                    self._buffer(tp, deliveries)
            due = self._take_due()
            if not main and not due:
                return
            commits = await self._process(main, due)
            await self._commit(commits)
            self._resume_drained()
            self.stats.rounds += 1
        self.guard.check()

    def _buffer(self, tp: TopicPartition, deliveries: list[Delivery]) -> None:
        buf = self._buffers.setdefault(tp, _RetryBuffer())
        buf.records.extend(deliveries)
        for d in deliveries:
            self.processor.note_in_retry(d)
        if buf.records:
            self.consumer.pause(tp)

    def _take_due(self) -> dict[TopicPartition, list[Delivery]]:
        now = epoch_ms(self.clock)
        due: dict[TopicPartition, list[Delivery]] = {}
        for tp, buf in self._buffers.items():
            n = 0
            while not self._stopping and n < len(buf.records) and buf.records[n].due_ms <= now:
                n += 1
            if n:
                due[tp], buf.records = buf.records[:n], buf.records[n:]
        return due

    def _resume_drained(self) -> None:
        for tp, buf in self._buffers.items():
            if not buf.records and tp in self.consumer.assignment():
                self.consumer.resume(tp)

    async def _process(
        self,
        main: dict[TopicPartition, list[Delivery]],
        due: dict[TopicPartition, list[Delivery]],
    ) -> dict[TopicPartition, int]:
        commits: dict[TopicPartition, int] = {}

        size = self.options.batch_max

        async def one(tp: TopicPartition, deliveries: Sequence[Delivery], retry: bool) -> None:
            # one transaction per worker_batch_max records of the partition, in order
            for start in range(0, len(deliveries), size):
                tally = await self.processor.process(
                    deliveries[start : start + size], is_retry=retry
                )
                self.stats.add(tally)
                for _ in range(tally.dead_lettered):
                    self.guard.record(True)
                for _ in range(tally.delivered + tally.duplicates + tally.stale):
                    self.guard.record(False)
            commits[tp] = deliveries[-1].offset + 1

        async with asyncio.TaskGroup() as group:
            for tp, deliveries in main.items():
                group.create_task(one(tp, deliveries, False))
            for tp, deliveries in due.items():
                group.create_task(one(tp, deliveries, True))
        return commits

    async def _commit(self, commits: dict[TopicPartition, int]) -> None:
        if not commits:
            return
        try:
            await self.consumer.commit(commits)
            self.stats.commits += 1
        except BusUnavailable as exc:
            # The group moved on or the broker is gone; the new owner re-reads these
            # records and the ledger skips what took effect. Nothing is lost.
            log.warning("offset_commit_failed", error=_cause_name(exc))

    # --- rebalance --------------------------------------------------------------------

    async def on_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("partitions_assigned", partitions=sorted(_name(tp) for tp in assigned))

    async def on_revoked(self, revoked: list[TopicPartition]) -> None:
        """Wait for the round in flight (it commits what it finished), then forget the
        partitions: their buffered retry records are re-read by the next owner."""
        async with self._lock:
            for tp in revoked:
                self._buffers.pop(tp, None)
            for partition in {tp.partition for tp in revoked if tp.topic == self.main_topic}:
                self.processor.parking.drop_partition(partition)
        log.info("partitions_revoked", partitions=sorted(_name(tp) for tp in revoked))

    def _stats_fields(self) -> dict[str, int]:
        s = self.stats
        return {
            "delivered": s.delivered,
            "duplicates": s.duplicates,
            "stale": s.stale,
            "retried": s.retried,
            "dead_lettered": s.dead_lettered,
        }


def _name(tp: TopicPartition) -> str:
    return f"{tp.topic}-{tp.partition}"


def _cause_name(exc: BusUnavailable) -> str:
    """The Kafka error's class behind ``exc`` (what the log used to name)."""
    cause = exc.__cause__
    return type(cause).__name__ if cause is not None else type(exc).__name__
