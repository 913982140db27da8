"""Where PostgreSQL's time goes, statement by statement (``pg_stat_statements``).

Used by ``bench/worker.py --pg-statements``. The server must load the extension at start
(``shared_preload_libraries``), which the machine's shared PostgreSQL does not:
``bench/pgstat-server`` starts a throwaway one that does and prints its URL. The
extension's counters are server-wide, so the bench resets them right before its measured
run, and the report lists only the statements of the bench's database.

A statement is named by what it does to which table (``INSERT event_traces``, ``SELECT
identities``), so a reader sees the cost of each table the design writes per event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["StatementCost", "print_costs", "reset", "statement_costs", "statement_name"]

_VERB = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM|SELECT|WITH)\b", re.IGNORECASE)
_TABLE_AFTER = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)\"?", re.I)
_FROM = re.compile(r"\bFROM\s+\"?([a-z_]\w*)\"?", re.IGNORECASE)


def statement_name(query: str) -> str:
    """``INSERT INTO "event_traces" (…) SELECT …`` → ``INSERT event_traces``; a SELECT is
    named by the first table it reads; anything else by its first word."""
    verb = _VERB.match(query)
    if verb is None:
        return query.split(None, 1)[0].upper() if query.strip() else "?"
    word = verb.group(1).split()[0].upper()
    target = _TABLE_AFTER.match(query) if word != "SELECT" and word != "WITH" else None
    if target is not None:
        return f"{word} {target.group(1)}"
    source = _FROM.search(query)
    return f"{word} {source.group(1)}" if source else word


@dataclass(frozen=True)
class StatementCost:
    name: str
    calls: int
    rows: int
    exec_ms: float


async def reset(engine: AsyncEngine) -> bool:
    """Zero the extension's counters; False when the server does not have it loaded."""
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            await conn.execute(text("SELECT pg_stat_statements_reset()"))
    except DBAPIError:
        return False
    return True


async def statement_costs(engine: AsyncEngine) -> list[StatementCost]:
    """This database's statements since :func:`reset`, summed by name, costliest first."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT query, calls, rows, total_exec_time FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
        summed: dict[str, list[float]] = {}
        for query, calls, count, exec_ms in rows:
            entry = summed.setdefault(statement_name(query), [0, 0, 0.0])
            entry[0] += calls
            entry[1] += count
            entry[2] += exec_ms
    costs = [StatementCost(name, int(c), int(r), ms) for name, (c, r, ms) in summed.items()]
    return sorted(costs, key=lambda cost: cost.exec_ms, reverse=True)


def print_costs(costs: list[StatementCost], events: int, *, top: int = 12) -> None:
    total_ms = sum(cost.exec_ms for cost in costs) or 1.0
    print(
        f"   PostgreSQL execution time by statement (pg_stat_statements): "
        f"{total_ms * 1000 / events:.1f} µs per event in all"
    )
    print(f"   {'statement':32s} {'calls':>6s} {'rows':>8s} {'µs/event':>9s} {'µs/row':>7s} share")
    for cost in costs[:top]:
        per_row = f"{cost.exec_ms * 1000 / cost.rows:.1f}" if cost.rows else "-"
        print(
            f"   {cost.name:32s} {cost.calls:6d} {cost.rows:8d} "
            f"{cost.exec_ms * 1000 / events:9.1f} {per_row:>7s} {cost.exec_ms / total_ms:6.1%}"
        )
