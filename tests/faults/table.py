"""The fault table: one row per fault the worker survives, printed after the run.

Each fault test calls :func:`record` once with what it counted; ``conftest.py`` prints
:data:`ROWS` as a markdown table at the end of the session (``bench/report`` and
``bench/soak`` print the same shape). Every row must read 0 duplicated, 0 lost.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HEADER", "ROWS", "FaultRow", "format_table", "record"]


@dataclass(frozen=True)
class FaultRow:
    fault: str
    sent: int  # distinct events sent
    applied: int  # distinct events that took effect in the CRM
    duplicated: int  # CRM writes beyond the first, per event
    lost: int  # sent and never applied (nor dead-lettered for a reason of their own)


ROWS: list[FaultRow] = []

HEADER = "| fault | sent | applied | duplicated | lost |"


def record(fault: str, sent: int, applied: int, duplicated: int, lost: int) -> None:
    """Add one row to the session's table (call it after the test's assertions' inputs
    are counted, before asserting, so a failing row shows too)."""
    ROWS.append(FaultRow(fault, sent, applied, duplicated, lost))


def format_table(rows: list[FaultRow]) -> str:
    lines = [HEADER, "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r.fault} | {r.sent} | {r.applied} | {r.duplicated} | {r.lost} |" for r in rows]
    return "\n".join(lines)
