"""The worker against real parts: Tansu, PostgreSQL, the REST CRM contract server."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from wa_bridge.store import open_store
from wa_bridge.store.api import DeadLetterFilter

from .conftest import FlakyCrm, make_event, publish
from .processes import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def assert_once(crm: FlakyCrm, n: int, *, after_timeout: bool = False) -> None:
    """Every note written, none twice: 0 lost, 0 duplicate CRM writes.

    A batch the client gave up on (timeout) may still land; its retry then rewrites the
    same records by key (idempotent: one record each), so they may be seen twice.
    """
    assert sorted(crm.notes()) == sorted(f"wamid.{i}" for i in range(n))
    most = max(Counter(crm.note_writes()).values())
    assert most <= (2 if after_timeout else 1)


async def test_batch_applies_each_event_once_despite_five_deliveries(
    settings_factory: Callable[..., Any], worker_factory: Callable[..., Any], crm: FlakyCrm
) -> None:
    settings = settings_factory()
    events = [make_event(i, f"+5215512345{i % 4:03d}") for i in range(20)]
    async with worker_factory(settings) as worker:
        await publish(settings, events * 5)  # Meta retried every webhook 4 times
        stats = await worker.run_until_idle()
    assert stats.delivered == 20
    assert stats.duplicates == 80
    assert stats.dead_lettered == 0
    assert_once(crm, 20)


async def test_crm_429_500_and_timeouts_are_retried_in_place(
    settings_factory: Callable[..., Any], worker_factory: Callable[..., Any], crm: FlakyCrm
) -> None:
    settings = settings_factory(retry_in_place_attempts=4, crm_timeout_s=0.3)
    crm.script(status=429, retry_after_s=0.05)
    crm.script(status=500)
    crm.script(delay_s=0.6)  # longer than crm_timeout_s
    events = [make_event(i, f"+54911{i:08d}") for i in range(6)]
    async with worker_factory(settings) as worker:
        await publish(settings, events)
        stats = await worker.run_until_idle()

    async def landed() -> bool:  # the abandoned slow request lands before we check
        return crm.all_answered()

    await wait_for(landed, timeout_s=5)
    assert stats.dead_lettered == 0
    assert stats.delivered == 6
    assert_once(crm, 6, after_timeout=True)


async def test_a_rejected_event_is_dead_lettered_alone(
    settings_factory: Callable[..., Any], worker_factory: Callable[..., Any], crm: FlakyCrm
) -> None:
    settings = settings_factory(kafka_partitions=1)
    events = [make_event(i, f"+5511999{i:06d}") for i in range(5)]
    events[2] = make_event(2, "+5511999000002", poison="permanent")
    async with worker_factory(settings) as worker:
        await publish(settings, [*events, b"not json"])
        stats = await worker.run_until_idle()
    assert stats.delivered == 4
    assert stats.dead_lettered == 2
    assert sorted(crm.notes()) == ["wamid.0", "wamid.1", "wamid.3", "wamid.4"]
    store = await open_store(settings.database_url)
    try:
        letters = await store.list_dead_letters(DeadLetterFilter())
    finally:
        await store.aclose()
    assert sorted(d.error_class for d in letters) == ["InvalidEvent", "MappingOutputInvalid"]


async def test_crm_400_keeps_the_crm_message_in_the_dead_letter(
    settings_factory: Callable[..., Any], worker_factory: Callable[..., Any], crm: FlakyCrm
) -> None:
    settings = settings_factory(kafka_partitions=1)
    crm.script(status=400, times=2)  # the batch, then the first event alone
    events = [make_event(i, f"+5215500000{i:03d}") for i in range(3)]
    async with worker_factory(settings) as worker:
        await publish(settings, events)
        stats = await worker.run_until_idle()
    assert stats.dead_lettered == 1
    assert stats.delivered == 2
    store = await open_store(settings.database_url)
    try:
        (letter,) = await store.list_dead_letters(DeadLetterFilter())
    finally:
        await store.aclose()
    assert letter.error_class == "CrmRejected"
    assert letter.crm_error and "scripted 400" in letter.crm_error


async def test_unknown_phone_number_id_is_dead_lettered_with_the_id(
    settings_factory: Callable[..., Any], worker_factory: Callable[..., Any], crm: FlakyCrm
) -> None:
    settings = settings_factory(phone_number_ids=["1098765432"])
    events = [make_event(0, "+5215511111111"), make_event(1, "+5215511111112", pnid="555")]
    async with worker_factory(settings) as worker:
        await publish(settings, events)
        stats = await worker.run_until_idle()
    assert (stats.delivered, stats.dead_lettered) == (1, 1)
    store = await open_store(settings.database_url)
    try:
        (letter,) = await store.list_dead_letters(DeadLetterFilter(error_class="UnknownRoute"))
    finally:
        await store.aclose()
    assert "555" in letter.error_message


async def test_a_bug_is_dead_lettered_as_unexpected_error(
    settings_factory: Callable[..., Any], worker_factory: Callable[..., Any], crm: FlakyCrm
) -> None:
    settings = settings_factory()
    events = [make_event(0, "+5215522222222", poison="bug"), make_event(1, "+5215522222223")]
    async with worker_factory(settings) as worker:
        await publish(settings, events)
        stats = await worker.run_until_idle()
    assert (stats.delivered, stats.dead_lettered) == (1, 1)
    store = await open_store(settings.database_url)
    try:
        (letter,) = await store.list_dead_letters(DeadLetterFilter())
    finally:
        await store.aclose()
    assert letter.error_class == "UnexpectedError"
    assert letter.attempts >= 1
