"""Shared fixtures: real parts only (Tansu broker, PostgreSQL, local HTTP servers)."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings

from faults.table import ROWS, FaultRow, format_table
from wa_bridge.bus.embedded import EmbeddedBroker

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from wa_bridge.store import SqlStore

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "samples"
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"

# Tests run with asyncio debug mode, so a callback that blocks the loop > 100 ms is logged.
os.environ.setdefault("PYTHONASYNCIODEBUG", "1")

# No property test has a deadline: a test asserts what a function does, never how fast it
# does it (bench/ measures that). Hypothesis's default 200 ms deadline failed a phone test
# on a loaded 2-core machine whose first call loaded a region's metadata (346 ms).
settings.register_profile("wa-bridge", deadline=None)
settings.load_profile("wa-bridge")

# The suite runs in pytest-xdist workers (scripts/test); each worker has its own broker and
# schema. A fault test's row lands in its worker's ROWS: it travels to the controller on the
# test's report and is printed there, after the run.
_XDIST_WORKER = "PYTEST_XDIST_WORKER" in os.environ
_FAULT_ROW = "wa_bridge_fault_row"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if _XDIST_WORKER:
        report.user_properties += [(_FAULT_ROW, dataclasses.astuple(row)) for row in ROWS]
        ROWS.clear()  # sent: the controller prints them
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not _XDIST_WORKER:
        ROWS.extend(
            FaultRow(*value) for name, value in report.user_properties if name == _FAULT_ROW
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if ROWS:
        terminalreporter.write_sep("=", "fault table")
        terminalreporter.write_line(format_table(ROWS))


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One Tansu broker for the whole session, on a free port."""
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    b = EmbeddedBroker(log_path=log)
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def topic_factory() -> Callable[[str], str]:
    """Uuid-named topics, so tests sharing the broker never see each other's records."""

    def make(prefix: str = "t") -> str:
        return f"{prefix}.{uuid.uuid4().hex[:12]}"

    return make


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """``../shared/fixtures``; tests that use it skip cleanly when it is absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is absent")
    return SHARED_FIXTURES


# --- PostgreSQL and the state store (tests/store, connectors/test_sql_connector) ----------

DEFAULT_TEST_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _with_search_path(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}search_path={schema}"


@pytest.fixture(scope="session")
async def pg_session() -> AsyncIterator[tuple[str, AsyncEngine]]:
    """A fresh schema for this session (tables created), its URL and an engine on it.

    The URL carries ``?search_path=<schema>`` (understood by ``wa_bridge.store``). When
    PostgreSQL is unreachable: fail under CI, else skip with the reason.
    """
    from sqlalchemy import text

    from wa_bridge.store import create_engine, open_store

    base = os.environ.get("WA_BRIDGE_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        await admin.dispose()
        reason = f"PostgreSQL unreachable at {base}: {type(exc).__name__}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    url = _with_search_path(base, schema)
    store = await open_store(url, create=True)
    await store.aclose()
    engine = create_engine(url)
    try:
        yield url, engine
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
async def pg_url(pg_session: tuple[str, AsyncEngine]) -> str:
    """The session schema's URL, with every table emptied before the test."""
    from sqlalchemy import text

    from wa_bridge.store.tables import metadata

    url, engine = pg_session
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    return url


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same store test on PostgreSQL (emptied session schema) and SQLite (fresh file)."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
async def store_factory() -> AsyncIterator[Callable[..., Awaitable[SqlStore]]]:
    """``await store_factory(url, **open_store_kwargs)``: a store, closed after the test.

    SQLite stores get their tables created; PostgreSQL ones use the session schema.
    """
    from wa_bridge.store import open_store

    opened: list[SqlStore] = []

    async def make(url: str, **kwargs: Any) -> SqlStore:
        store = await open_store(url, create=url.startswith("sqlite"), **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.aclose()
