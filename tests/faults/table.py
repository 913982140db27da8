"""The fault table: per fault, events sent, applied, duplicated and lost (issue 13).

Every fault test in this directory records one row per fault it played::

    from faults.table import record
    record("hubspot: 429 on call 2/5", sent=6, applied=6, duplicated=0, lost=0)

``conftest.py`` prints :data:`ROWS` at the end of the session and fails the session when
a row reads anything but 0 duplicated and 0 lost (each test asserts its own row too).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ROWS", "Row", "bad_rows", "format_table", "record"]


@dataclass(frozen=True, slots=True)
class Row:
    fault: str
    sent: int
    applied: int
    duplicated: int
    lost: int

    @property
    def is_clean(self) -> bool:
        return self.duplicated == 0 and self.lost == 0 and self.applied == self.sent


ROWS: list[Row] = []


def record(fault: str, sent: int, applied: int, duplicated: int, lost: int) -> Row:
    """Add one row to the session's table and return it."""
    row = Row(fault, sent, applied, duplicated, lost)
    ROWS.append(row)
    return row


def bad_rows(rows: list[Row] | None = None) -> list[Row]:
    """Rows with a duplicate or a loss (the table must have none)."""
    return [r for r in (ROWS if rows is None else rows) if not r.is_clean]


def format_table(rows: list[Row] | None = None) -> str:
    """The rows as a fixed-width table (one header line, one line per row)."""
    rows = ROWS if rows is None else rows
    width = max([len("fault"), *(len(r.fault) for r in rows)])
    lines = [f"{'fault':<{width}}  {'sent':>6}  {'applied':>7}  {'duplicated':>10}  {'lost':>6}"]
    for r in rows:
        lines.append(
            f"{r.fault:<{width}}  {r.sent:>6}  {r.applied:>7}  {r.duplicated:>10}  {r.lost:>6}"
        )
    return "\n".join(lines)
