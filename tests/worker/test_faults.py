"""Faults: the state database restarted under the worker."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from wa_bridge.store import create_engine

from .conftest import FlakyCrm, make_event, publish

# serial: it terminates every backend of the shared test database, the other test
# processes' connections too (each has only its own schema in it)
pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.serial]


async def _terminate_backends(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND application_name <> 'keep'"
                )
            )
            return int(result.scalar_one())
    finally:
        await engine.dispose()


async def test_database_restart_loses_nothing_and_writes_nothing_twice(
    settings_factory: Callable[..., Any], worker_factory: Callable[..., Any], crm: FlakyCrm
) -> None:
    settings = settings_factory()
    first = [make_event(i, f"+5215566660{i % 3:03d}") for i in range(10)]
    second = [make_event(i, f"+5215566660{i % 3:03d}") for i in range(10, 20)]
    async with worker_factory(settings) as worker:
        await publish(settings, first)
        await worker.run_until_idle()
        # on a loaded machine the first batch may time out (0.3 s) after the CRM took it
        # and be sent again in place: the REST CRM keys notes, so that is not a duplicate.
        # What this test holds is that the restart rewrites nothing: count from here on.
        before_restart = len(crm.note_writes())
        assert set(crm.note_writes()) == {f"wamid.{i}" for i in range(10)}
        assert await _terminate_backends(settings.database_url) >= 1
        await publish(settings, [*second, *first])
        stats = await worker.run_until_idle()
    assert stats.delivered == 20
    assert stats.duplicates == 10
    assert sorted(crm.notes()) == sorted(f"wamid.{i}" for i in range(20))
    after_restart = Counter(crm.note_writes()[before_restart:])
    assert after_restart == Counter(f"wamid.{i}" for i in range(10, 20))
