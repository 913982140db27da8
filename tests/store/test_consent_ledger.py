"""The consent ledger (store.consent): append-only, once per event, and the state is the
latest consent by the time it was given, in whatever order the events arrive."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from wa_bridge.store import SqlStore, open_store
from wa_bridge.store.consent import ConsentRecord, consent_history, record_consents

T0 = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)
RECORDS = [
    ConsentRecord("e-in", "c_1", "opt_in", T0, captured_via="web_form"),
    ConsentRecord("e-out", "c_1", "opt_out", T0 + timedelta(hours=1), captured_via="keyword"),
    ConsentRecord("e-in2", "c_1", "opt_in", T0 + timedelta(hours=2), captured_via="pos"),
    ConsentRecord("e-util", "c_1", "opt_out", T0 + timedelta(hours=3), purpose="utility"),
]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}", create=True)
    yield opened
    await opened.aclose()


async def test_the_state_is_the_latest_by_time_in_any_arrival_order(store: SqlStore) -> None:
    for n, order in enumerate(itertools.permutations(RECORDS)):
        told: dict[str, ConsentRecord] = {}  # what the CRM was last told, per purpose
        async with store.engine.begin() as conn:
            for record in order:  # one batch each, as they may arrive
                mine = ConsentRecord(
                    f"{record.event_id}-{n}",
                    f"c_{n}",
                    record.status,
                    record.at,
                    purpose=record.purpose,
                )
                [is_current] = await record_consents(conn, [mine])
                if is_current:
                    told[mine.purpose] = mine
            history = await consent_history(conn, f"c_{n}")
        assert told["marketing"].status == "opt_in" and told["marketing"].at == RECORDS[2].at
        assert told["utility"].status == "opt_out"
        assert [row["at"] for row in history] == sorted(r.at for r in RECORDS)


async def test_a_redelivered_event_is_recorded_once_and_changes_nothing(store: SqlStore) -> None:
    async with store.engine.begin() as conn:
        assert await record_consents(conn, RECORDS[:2]) == [False, True]
        assert await record_consents(conn, [RECORDS[1]]) == [True]  # still the latest
        assert await record_consents(conn, [RECORDS[0]]) == [False]
        history = await consent_history(conn, "c_1")
    assert [row["event_id"] for row in history] == ["e-in", "e-out"]
    assert history[0]["captured_via"] == "web_form"
