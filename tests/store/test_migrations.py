"""Migration 0001 creates exactly the tables and columns of wa_bridge.store.tables."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from wa_bridge.store import create_engine
from wa_bridge.store.migrate import (
    MIGRATIONS_DIR,
    SOURCE_MIGRATIONS_DIR,
    find_migrations_dir,
    upgrade,
)
from wa_bridge.store.tables import metadata

EXPECTED = {t.name: {c.name for c in t.columns} for t in metadata.sorted_tables}


def _schema(conn: Connection) -> dict[str, set[str]]:
    insp = inspect(conn)
    return {
        name: {c["name"] for c in insp.get_columns(name)}
        for name in insp.get_table_names()
        if name != "alembic_version"
    }


def _indexes(conn: Connection) -> dict[str, Any]:
    insp = inspect(conn)
    return {
        name: sorted((i["name"], bool(i["unique"])) for i in insp.get_indexes(name))
        for name in EXPECTED
    }


@pytest.fixture
async def fresh_pg_url(pg_session: tuple[str, Any]) -> AsyncIterator[str]:
    base = os.environ.get(
        "WA_BRIDGE_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
    schema = f"m_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}{'&' if '?' in base else '?'}search_path={schema}"
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def _index_defs(url: str) -> dict[str, str]:
    """Each index of the tables of metadata in the URL's schema → its definition, the
    schema name taken out (other tests may add tables of their own to the session's)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT indexname, indexdef, schemaname FROM pg_indexes "
                    "WHERE schemaname = current_schema() AND tablename = ANY(:tables)"
                ),
                {"tables": sorted(EXPECTED)},
            )
            return {name: d.replace(f"{schema}.", "") for name, d, schema in rows}
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_migrated_indexes_are_those_of_metadata_method_and_all(
    fresh_pg_url: str, pg_session: tuple[str, Any]
) -> None:
    await asyncio.to_thread(upgrade, fresh_pg_url)
    migrated = await _index_defs(fresh_pg_url)
    session_url, _ = pg_session  # tables made by metadata.create_all
    assert "ix_event_traces_outcome_at" in migrated  # it did read the indexes
    assert migrated == await _index_defs(session_url)


@pytest.mark.postgres
async def test_upgrade_head_on_fresh_postgres_schema_matches_metadata(
    fresh_pg_url: str, pg_session: tuple[str, Any]
) -> None:
    await asyncio.to_thread(upgrade, fresh_pg_url)
    engine = create_engine(fresh_pg_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_schema) == EXPECTED
            migrated = await conn.run_sync(_indexes)
    finally:
        await engine.dispose()
    _, session_engine = pg_session  # tables made by metadata.create_all
    async with session_engine.connect() as conn:
        assert await conn.run_sync(_indexes) == migrated
    await asyncio.to_thread(upgrade, fresh_pg_url)  # a second upgrade is a no-op


def _lengths(conn: Connection) -> dict[tuple[str, str], int | None]:
    """(table, column) → its VARCHAR length (None for a column of another type)."""
    insp = inspect(conn)
    return {
        (name, c["name"]): getattr(c["type"], "length", None)
        for name in EXPECTED
        for c in insp.get_columns(name)
    }


EXPECTED_LENGTHS = {
    (t.name, c.name): getattr(c.type, "length", None)
    for t in metadata.sorted_tables
    for c in t.columns
}


@pytest.mark.postgres
async def test_migrated_column_lengths_are_those_of_metadata(fresh_pg_url: str) -> None:
    """A column widened in tables.py (so the store holds what the edges accept) is widened
    by a migration too: the tables a deployment has are the migrated ones."""
    await asyncio.to_thread(upgrade, fresh_pg_url)
    engine = create_engine(fresh_pg_url)
    try:
        async with engine.connect() as conn:
            migrated = await conn.run_sync(_lengths)
    finally:
        await engine.dispose()
    assert migrated[("identities", "business")] == 200  # it did read the lengths (0009)
    assert migrated == EXPECTED_LENGTHS


def downgrade(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    command.downgrade(config, revision)


@pytest.mark.postgres
async def test_0009_widens_and_narrows_back(fresh_pg_url: str) -> None:
    await asyncio.to_thread(upgrade, fresh_pg_url, "0008")
    engine = create_engine(fresh_pg_url)
    try:
        async with engine.connect() as conn:
            before = await conn.run_sync(_lengths)
        assert before[("cases", "business_number")] == 64
        assert before[("crm_cases", "source_url")] == 2000
        await asyncio.to_thread(upgrade, fresh_pg_url)
        async with engine.connect() as conn:
            after = await conn.run_sync(_lengths)
        assert after[("cases", "business_number")] == 200
        assert after[("crm_contacts", "name")] == 256
        assert after[("crm_cases", "ctwa_clid")] == 512
        assert after[("crm_cases", "source_url")] == 2048
        await asyncio.to_thread(downgrade, fresh_pg_url, "0008")
        async with engine.connect() as conn:
            assert await conn.run_sync(_lengths) == before
    finally:
        await engine.dispose()


async def test_upgrade_head_on_sqlite(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_schema) == EXPECTED
    finally:
        await engine.dispose()


def test_packaged_scripts_win_over_the_source_tree(tmp_path: Path) -> None:
    packaged = tmp_path / "site-packages" / "wa_bridge" / "_migrations"
    source = tmp_path / "repo" / "migrations"
    source.mkdir(parents=True)
    (source / "alembic.ini").write_text("[alembic]\n")
    assert find_migrations_dir((packaged, source)) == source  # not installed: source tree
    packaged.mkdir(parents=True)
    (packaged / "alembic.ini").write_text("[alembic]\n")
    assert find_migrations_dir((packaged, source)) == packaged
    missing = tmp_path / "nowhere"
    assert find_migrations_dir((missing,)) == missing  # upgrade() then names it


def test_running_from_the_source_tree_finds_its_scripts() -> None:
    assert (MIGRATIONS_DIR / "alembic.ini").is_file()
    assert (SOURCE_MIGRATIONS_DIR / "versions").is_dir()


async def test_upgrade_from_a_copied_scripts_dir_as_in_a_wheel(tmp_path: Path) -> None:
    # the wheel carries migrations/ as wa_bridge/_migrations: the scripts must not depend
    # on sitting next to the source tree
    packaged = tmp_path / "wa_bridge" / "_migrations"
    shutil.copytree(SOURCE_MIGRATIONS_DIR, packaged, ignore=shutil.ignore_patterns("__pycache__"))
    url = f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"
    await asyncio.to_thread(upgrade, url, migrations_dir=packaged)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_schema) == EXPECTED
    finally:
        await engine.dispose()
