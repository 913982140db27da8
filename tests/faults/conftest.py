"""The fault table, printed at the end of the session (and every row must read zeros)."""

from __future__ import annotations

import pytest

from connectors.conftest import (  # noqa: F401 - fixtures
    hubspot_session,
    rest_crm_session,
    salesforce_session,
)
from faults.table import ROWS, bad_rows, format_table


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    terminalreporter.section("fault table (every row: 0 duplicated, 0 lost)")
    terminalreporter.write_line(format_table())
    for row in bad_rows():
        terminalreporter.write_line(f"NOT CLEAN: {row.fault}", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if bad_rows() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
