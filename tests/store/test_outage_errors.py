"""Which database errors are outages (waited out) and which are the statement's fault."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from wa_bridge.errors import StoreUnavailable
from wa_bridge.store import create_engine
from wa_bridge.store.db import store_errors

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize(
    ("errcode", "is_outage"),
    [
        ("disk_full", True),  # 53100
        ("out_of_memory", True),  # 53200
        ("too_many_connections", True),  # 53300
        ("admin_shutdown", True),  # 57P01
        ("cannot_connect_now", True),  # 57P03
        ("io_error", True),  # 58030
        ("unique_violation", False),  # 23505: the statement's fault
        ("undefined_table", False),  # 42P01: a bug or a missing migration
    ],
)
async def test_server_conditions_are_outages_statement_faults_are_not(
    pg_url: str, errcode: str, is_outage: bool
) -> None:
    engine = create_engine(pg_url)
    raised: BaseException | None = None
    try:
        with store_errors("a test"):
            async with engine.connect() as conn:
                await conn.execute(
                    text(f"DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{errcode}'; END $$")
                )
    except Exception as exc:
        raised = exc
    finally:
        await engine.dispose()
    assert raised is not None
    assert isinstance(raised, StoreUnavailable) is is_outage, repr(raised)
