"""Shared fixtures: real parts only (Tansu broker, PostgreSQL, local HTTP servers)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wa_bridge.bus.embedded import EmbeddedBroker

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "samples"
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"

# Tests run with asyncio debug mode, so a callback that blocks the loop > 100 ms is logged.
os.environ.setdefault("PYTHONASYNCIODEBUG", "1")


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
