"""Fault tests: print the fault table (``table.py``) at the end of the session."""

from __future__ import annotations

import pytest

from .table import ROWS, format_table


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if ROWS:
        terminalreporter.write_sep("=", "fault table")
        terminalreporter.write_line(format_table(ROWS))
