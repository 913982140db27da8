"""``run_worker``: build the worker's parts in one AsyncExitStack and run until stopped.

Start order: store → mapping → connector (:mod:`wa_bridge.worker.assembly`) → topics →
producer → consumer. Stop order is the reverse: the consumer leaves the group after its
last commit, the producer flushes, the connector and the store close.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from wa_bridge.bus.admin import ensure_topics_for
from wa_bridge.bus.consumer import build_consumer
from wa_bridge.bus.record_producer import build_producer
from wa_bridge.bus.topics import dlq_topic, retry_topic
from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.connectors.base import CrmConnector
from wa_bridge.errors import ConfigError, DlqLimitExceeded
from wa_bridge.log import get_logger
from wa_bridge.settings import Settings
from wa_bridge.store.api import Store
from wa_bridge.worker.assembly import open_pipeline
from wa_bridge.worker.batch import BatchProcessor
from wa_bridge.worker.dlq import DeadLetterer, DlqGuard
from wa_bridge.worker.loop import Worker
from wa_bridge.worker.monitor import run_monitor
from wa_bridge.worker.options import BatchOptions, WorkerOptions
from wa_bridge.worker.pipeline import EventMapper
from wa_bridge.worker.retention import RetentionOptions, run_retention
from wa_bridge.worker.sweep import SweepOptions, run_sweep

__all__ = ["open_worker", "run_embedded_worker", "run_worker", "worker_topics"]

log = get_logger("worker")


def worker_topics(settings: Settings) -> list[str]:
    """The main topic, its retry topics and its DLQ."""
    base = settings.kafka_topic
    retries = [retry_topic(base, n) for n in range(1, len(settings.retry_delays_s) + 1)]
    return [base, *retries, dlq_topic(base)]


@contextlib.asynccontextmanager
async def open_worker(
    settings: Settings,
    *,
    store: Store | None = None,
    mapper: EventMapper | None = None,
    connector: CrmConnector | None = None,
    guard: DlqGuard | None = None,
    consumer_options: dict[str, Any] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> AsyncIterator[Worker]:
    """A started worker (in the group, subscribed); everything closed on exit.

    Parts not given are built from ``settings``; parts given stay the caller's to close.
    """
    if not settings.retry_delays_s:
        raise ConfigError("WA_BRIDGE_RETRY_DELAYS_S needs at least one delay")
    async with contextlib.AsyncExitStack() as stack:
        pipeline = await open_pipeline(
            settings, stack, store=store, mapper=mapper, connector=connector, clock=clock
        )
        await ensure_topics_for(settings, worker_topics(settings))
        producer = build_producer(settings)
        await producer.start()
        stack.push_async_callback(producer.stop)
        dead_letterer = DeadLetterer(producer, pipeline.store, base_topic=settings.kafka_topic)
        processor = BatchProcessor(
            BatchOptions.from_settings(settings),
            pipeline=pipeline,
            dead_letterer=dead_letterer,
            producer=producer,
            clock=clock,
        )
        consumer = build_consumer(settings, **(consumer_options or {}))
        worker = Worker(
            WorkerOptions.from_settings(settings),
            consumer=consumer,
            processor=processor,
            guard=guard,
            clock=clock,
        )
        await consumer.start(worker.topics, worker)
        stack.push_async_callback(consumer.stop)
        yield worker


async def run_worker(
    settings: Settings,
    *,
    stop: asyncio.Event,
    consumer_options: dict[str, Any] | None = None,
    drain_s: float = 0.0,
) -> None:
    """Run the worker until ``stop`` is set (SIGTERM, Ctrl-C, or the dev command).

    On stop: no more batches (with ``drain_s``: first keep going until caught up, for at
    most ``drain_s``); the batches in flight finish within ``settings.shutdown_grace_s``;
    finished offsets are committed; the producer flushes; the database closes. Raises
    DlqLimitExceeded (after logging CRITICAL) when most recent events were dead-lettered.
    """
    async with open_worker(settings, consumer_options=consumer_options) as worker:
        log.info("worker_started", group=settings.consumer_group, topics=worker.topics)
        try:
            await _run_with_retention(worker, settings, stop, drain_s)
        except DlqLimitExceeded as exc:
            log.critical("dlq_limit_exceeded", reason=str(exc))
            raise


async def run_embedded_worker(
    settings: Settings,
    *,
    stop: asyncio.Event,
    on_pause: Callable[[str], None],
    consumer_options: dict[str, Any] | None = None,
) -> None:
    """The worker of ``wa-bridge dev``, whose broker keeps events in memory only.

    When the DLQ guard trips it pauses instead of stopping the process: ``on_pause`` gets
    the reason (once) and the worker consumes nothing until ``stop``. On ``stop`` it
    drains the broker for up to ``settings.dev_drain_timeout_s``: every event the
    receiver acknowledged ends in the CRM or, failing there, in the dead-letter table
    (the guard does not stop a drain), not in a broker that is about to go away.
    """
    drain_s = settings.dev_drain_timeout_s
    try:
        await run_worker(settings, stop=stop, consumer_options=consumer_options, drain_s=drain_s)
        return
    except DlqLimitExceeded as exc:
        on_pause(str(exc))
    log.warning("worker_paused", until="stop")
    await stop.wait()
    if drain_s > 0:
        await run_worker(settings, stop=stop, consumer_options=consumer_options, drain_s=drain_s)


async def _run_with_retention(
    worker: Worker, settings: Settings, stop: asyncio.Event, drain_s: float
) -> None:
    """The consumer loop and the retention job in one TaskGroup; the loop's end stops both.

    A single failure is re-raised as itself (not as an ExceptionGroup), so callers keep
    matching on our error classes.
    """
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                run_retention(
                    worker.processor.pipeline.store,
                    RetentionOptions.from_settings(settings),
                    stop,
                    clock=worker.clock,
                ),
                name="retention",
            )
            tasks.create_task(
                run_monitor(worker, settings, stop, clock=worker.clock), name="monitor"
            )
            tasks.create_task(
                run_sweep(
                    worker.processor.pipeline.store,
                    worker.processor.router.producer,
                    SweepOptions.from_settings(settings),
                    stop,
                    clock=worker.clock,
                ),
                name="sweep",
            )
            try:
                await worker.run(stop, drain_s=drain_s)
            finally:
                stop.set()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
