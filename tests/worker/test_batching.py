"""Batches cross partitions, and partitions proceed on their own (#13: no rounds).

The worker in its production mode (``run(stop)``) against Tansu, PostgreSQL and the REST
CRM contract server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from wa_bridge.settings import Settings
from wa_bridge.worker.loop import Worker

from .conftest import FlakyCrm, make_event, publish
from .processes import wait_for
from .sqlcrm import committed_offsets

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await task


def contacts_on(partition: int, count: int, partitions: int) -> list[str]:
    """``count`` contact keys the producer's partitioner puts on ``partition``."""
    pick = DefaultPartitioner()
    every = list(range(partitions))
    found: list[str] = []
    n = 0
    while len(found) < count:
        key = f"+5215530{n:06d}"
        if pick(key.encode(), every, every) == partition:
            found.append(key)
        n += 1
    return found


async def committed(settings: Settings, partition: int) -> int:
    """The group's committed offset of one main-topic partition (0: none)."""
    return await committed_offsets(settings, [partition])


def batch_requests(crm: FlakyCrm) -> int:
    return sum(1 for r in crm.requests if r.path == "/batch")


async def test_a_batch_takes_every_partition_after_the_linger(
    settings_factory: Callable[..., Settings],
    worker_factory: Callable[..., Any],
    crm: FlakyCrm,
) -> None:
    settings = settings_factory(kafka_partitions=4, worker_linger_ms=400)
    events = [make_event(i, f"+5215531{i:06d}") for i in range(40)]
    async with worker_factory(settings) as worker:
        await publish(settings, events)
        async with running(worker):

            async def landed() -> bool:
                return len(crm.notes()) == 40

            await wait_for(landed, timeout_s=20)
    # 40 events of 4 partitions (80 operations): one CRM request, not one per partition
    assert batch_requests(crm) == 1
    assert worker.stats.batches == 1 and worker.stats.delivered == 40


async def test_a_slow_batch_holds_back_only_its_own_partition(
    settings_factory: Callable[..., Settings],
    worker_factory: Callable[..., Any],
    crm: FlakyCrm,
) -> None:
    settings = settings_factory(kafka_partitions=2, crm_timeout_s=10, worker_linger_ms=0)
    (slow_contact,) = contacts_on(0, 1, 2)
    fast_contacts = contacts_on(1, 5, 2)
    crm.slow["wamid.0"] = 8.0  # long: a loaded CI machine must still finish the rest first
    async with worker_factory(settings) as worker:
        await publish(settings, [make_event(0, slow_contact)])
        async with running(worker):

            async def slow_started() -> bool:
                return "wamid.0" in crm.slow_started

            await wait_for(slow_started, timeout_s=20)
            await publish(settings, [make_event(i, c) for i, c in enumerate(fast_contacts, 1)])

            async def fast_committed() -> bool:
                return await committed(settings, 1) == 5

            await wait_for(fast_committed, timeout_s=6)  # well before the slow one answers
            assert sorted(crm.notes()) == [f"wamid.{i}" for i in range(1, 6)]
            assert await committed(settings, 0) == 0  # its batch is still in flight

            async def slow_committed() -> bool:
                return await committed(settings, 0) == 1

            await wait_for(slow_committed, timeout_s=10)
    assert "wamid.0" in crm.notes()
