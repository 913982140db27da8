"""UtcDateTime on SQLite: the text it stores is SQLAlchemy's SQLite DATETIME text, so
databases written before and after the one-step writer compare and read alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import create_async_engine

from wa_bridge.store.tables import UtcDateTime

MOMENTS = [
    datetime(2026, 12, 6, 10, 30, 0, 123456),  # naive: taken as UTC
    datetime(2026, 12, 6, 10, 30),  # no microseconds: still six digits
    datetime(2026, 12, 6, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),
    datetime(2026, 12, 6, 4, 0, tzinfo=timezone(timedelta(hours=-6))),
    datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),  # a four-digit year, zero-padded
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


def _sqlalchemy_text(value: datetime) -> str:
    """What SQLAlchemy's own SQLite DATETIME writes for ``value`` (as naive UTC)."""
    dialect = sqlite.dialect()
    naive = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    process = sqlite.DATETIME().bind_processor(dialect)
    assert process is not None
    return str(process(naive))


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_the_sqlite_text_is_sqlalchemys(moment: datetime) -> None:
    dialect = sqlite.dialect()
    process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)  # as the engine asks
    assert process is not None
    assert process(moment) == _sqlalchemy_text(moment)
    assert process(None) is None


async def test_stored_times_read_back_as_aware_utc_and_compare_in_order(tmp_path: Path) -> None:
    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UtcDateTime())
    )
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'utc.db'}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(table.insert(), [{"id": i, "at": m} for i, m in enumerate(MOMENTS)])
            stored = (await conn.execute(text("SELECT at FROM t ORDER BY id"))).scalars().all()
            back = (await conn.execute(select(table.c.at).order_by(table.c.id))).scalars().all()
            cutoff = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
            later = (
                (
                    await conn.execute(
                        select(table.c.id).where(table.c.at > cutoff).order_by(table.c.id)
                    )
                )
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    assert stored == [_sqlalchemy_text(m) for m in MOMENTS]
    assert back == [m if m.tzinfo else m.replace(tzinfo=UTC) for m in MOMENTS]
    assert all(b.tzinfo is UTC for b in back)
    assert later == [0, 1, 2, 5]  # 10:30, 10:30, 10:00:00.000005 UTC, 9999


def test_the_cached_text_follows_the_instant_not_the_wall_clock() -> None:
    """The writer caches its text: one instant in two zones gives one UTC text, and one
    wall-clock time in two zones gives two."""
    dialect = sqlite.dialect()
    process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    plus_two = datetime(2031, 5, 4, 12, 0, 0, 250000, tzinfo=timezone(timedelta(hours=2)))
    same_instant = plus_two.astimezone(UTC)
    same_wall_clock = plus_two.replace(tzinfo=timezone(timedelta(hours=-3)))
    naive_wall_clock = plus_two.replace(tzinfo=None)
    assert process(plus_two) == "2031-05-04 10:00:00.250000"
    assert process(same_instant) == "2031-05-04 10:00:00.250000"
    assert process(same_wall_clock) == "2031-05-04 15:00:00.250000"
    assert process(naive_wall_clock) == "2031-05-04 12:00:00.250000"  # naive: taken as UTC
    for moment in (plus_two, same_instant, same_wall_clock, naive_wall_clock):
        assert process(moment) == _sqlalchemy_text(moment)


def test_a_clock_set_back_gives_two_texts_for_its_repeated_hour() -> None:
    """1:30 on the night New York's clocks go back happens twice; the two compare and
    hash equal (only ``fold`` differs), so a cache keyed on them would give one text."""
    new_york = ZoneInfo("America/New_York")
    first = datetime(2026, 11, 1, 1, 30, tzinfo=new_york)
    second = first.replace(fold=1)
    assert first == second and hash(first) == hash(second)  # what makes it a trap
    dialect = sqlite.dialect()
    process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    assert process(first) == "2026-11-01 05:30:00.000000"
    assert process(second) == "2026-11-01 06:30:00.000000"
