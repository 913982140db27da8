"""Set-based statements for a whole batch: arrays on PostgreSQL, portable Core on SQLite.

On PostgreSQL a 2,000-row insert or update is one statement with ONE parameter: the rows
as a JSON array of arrays (orjson, in C), read back with ``jsonb_array_elements`` and a
cast per column, instead of 2,000 bound rows (executemany) or one array parameter per
column (asyncpg inspects every element of an array parameter in Python-level checks: that
was ~8 % of the worker's CPU). A lookup is ``col IN (SELECT unnest($1))``. SQLite has no
arrays: callers keep the Core statements there (``is_postgres``).

Values go in as the column types would take them: a naive datetime as UTC, a Decimal as
its exact text, a JSON column's value as JSON (None is SQL NULL). Assignment casts still
check each value (an over-long string fails with SQLSTATE 22001).

A column the caller names in ``once`` (a batch's time stamp, an outcome) whose rows all
hold one value goes in as one parameter of its own instead of once per row: PostgreSQL
then parses and casts it once, not 2,000 times (a time stamp is ~30 bytes of JSON and a
``timestamptz`` parse per row).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Integer,
    Numeric,
    Table,
    TextClause,
    TypeDecorator,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy import Text as TextType
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from wa_bridge.store._chunks import chunks
from wa_bridge.store.db import sqlstate_of

__all__ = [
    "PLAIN_INSERT_FROM",
    "column_arrays",
    "insert_arrays",
    "insert_new",
    "is_postgres",
    "members",
    "update_arrays",
]


def _quote(name: str) -> str:
    # names come from our own Table metadata (lower case): quoting keeps "offset" and
    # other reserved words safe
    return f'"{name}"'


def is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


def members(
    conn: AsyncConnection, column: ColumnElement[Any], values: Sequence[str]
) -> list[ColumnElement[bool]]:
    """WHERE clauses that together cover ``column IN values``: run one query per clause.

    PostgreSQL: one ``column IN (SELECT unnest(:values))`` (a single text[] parameter), a
    semi-join the planner runs as a hash or index lookup. Not ``column = ANY(:values)``:
    under a generic plan (asyncpg prepares statements; PostgreSQL switches plans after five
    runs) that is a filter scanning the array once per row: 10k rows × 4k values took
    ~0.7 s a batch in bench/store.py. SQLite: IN lists chunked under its parameter limit.
    """
    if not values:
        return []
    if conn.dialect.name == "postgresql":
        array = bindparam(None, list(values), type_=postgresql.ARRAY(TextType()))
        return [column.in_(select(func.unnest(array)))]
    return [column.in_(part) for part in chunks(values)]


def _base_type(column: Column[Any]) -> Any:
    kind = column.type
    return kind.impl if isinstance(kind, TypeDecorator) else kind


def _sql_type(column: Column[Any]) -> str:
    """The type a value is read as (assignment casts do the rest)."""
    kind = _base_type(column)
    if isinstance(kind, Boolean):
        return "boolean"
    if isinstance(kind, DateTime):
        return "timestamptz"
    if isinstance(kind, Integer):
        return "bigint"
    if isinstance(kind, Numeric):
        return "numeric"
    return "text"  # strings, and JSON sent as its text


def _pick(table: Table, name: str, index: int) -> str:
    """Row element ``index`` (of the JSON row ``r``) as column ``name``'s type."""
    if isinstance(_base_type(table.c[name]), JSON):
        return f"NULLIF(r->{index}, 'null'::jsonb)"  # None is SQL NULL, as the column makes it
    return f"CAST(r->>{index} AS {_sql_type(table.c[name])})"


_ROWS: Final = "FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r"


@lru_cache(maxsize=128)
def _insert_sql(
    table: Table, columns: tuple[str, ...], suffix: str, single: tuple[str, ...] = ()
) -> TextClause:
    """The rows' ``columns`` from the JSON rows, each of ``single`` from its parameter
    ``:once_<i>``."""
    picked = [_pick(table, name, i) for i, name in enumerate(columns)]
    picked += [f"CAST(:once_{i} AS {_sql_type(table.c[n])})" for i, n in enumerate(single)]
    names = ", ".join(_quote(name) for name in (*columns, *single))
    return text(
        f"INSERT INTO {_quote(table.name)} ({names}) SELECT {', '.join(picked)} {_ROWS} {suffix}"
    )


def _single_values(
    table: Table, arrays: Mapping[str, Sequence[Any]], once: Collection[str]
) -> dict[str, Any]:
    """The columns of ``once`` whose rows all hold one value (not JSON columns), with it."""
    single: dict[str, Any] = {}
    for name in once:
        values = arrays.get(name)
        if not values or isinstance(_base_type(table.c[name]), JSON):
            continue
        first = values[0]
        if values.count(first) == len(values):  # C-speed; [now] * n compares by identity
            if isinstance(first, datetime) and first.tzinfo is None:
                first = first.replace(tzinfo=UTC)  # as OPT_NAIVE_UTC reads it in the rows
            single[name] = first
    return single


def _decimal_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)  # exact; PostgreSQL's numeric cast reads it as written
    raise TypeError(f"{type(value).__name__} cannot go into a bulk statement")


def _rows_json(columns: Sequence[Sequence[Any]]) -> str:
    """Column values → the rows parameter: a JSON array of one array per row."""
    rows = list(zip(*columns, strict=True))
    return orjson.dumps(rows, default=_decimal_text, option=orjson.OPT_NAIVE_UTC).decode()


async def insert_arrays(
    conn: AsyncConnection,
    table: Table,
    arrays: Mapping[str, Sequence[Any]],
    suffix: str = "",
    *,
    once: Collection[str] = (),
) -> CursorResult[*tuple[Any, ...]]:
    """PostgreSQL only: ``INSERT INTO table (cols) SELECT … {suffix}``, the rows of
    ``arrays`` in one JSON parameter.

    ``arrays`` maps column name → one value per row (all the same length, at least one
    column not all NULL); rows are inserted in that order. ``suffix`` is raw SQL
    (``ON CONFLICT …``, ``RETURNING …``): constants only, never data. A column of ``once``
    whose rows all hold one value is sent once (see the module docstring).
    """
    # A column that is NULL in every row is left out: the insert makes it NULL anyway and
    # EXCLUDED still has it (NULL) for ON CONFLICT.
    present = [name for name, values in arrays.items() if any(v is not None for v in values)]
    single = _single_values(table, arrays, once)
    columns = tuple(name for name in present if name not in single)
    if not columns:  # the rows must carry something: their number
        single, columns = {}, tuple(present)
    params: dict[str, Any] = {f"once_{i}": value for i, value in enumerate(single.values())}
    params["rows"] = _rows_json([arrays[name] for name in columns])
    return await conn.execute(_insert_sql(table, columns, suffix, tuple(single)), params)


# From this many rows on, insert_new tries a plain INSERT first: it saves PostgreSQL ~2 µs
# a row (no speculative insertion; bench/rows.py "plain"), which pays for the savepoint's
# two round trips from about this size on. Smaller batches go straight to the fallback.
PLAIN_INSERT_FROM: Final = 100
_UNIQUE_VIOLATION: Final = "23505"


async def insert_new(
    conn: AsyncConnection,
    table: Table,
    arrays: Mapping[str, Sequence[Any]],
    fallback: str,
    *,
    once: Collection[str] = (),
) -> CursorResult[*tuple[Any, ...]] | None:
    """PostgreSQL only: insert rows that are new in the usual case; None when they were.

    With at least :data:`PLAIN_INSERT_FROM` rows, a plain ``INSERT`` (no ``ON CONFLICT``)
    inside a savepoint; if a row's key exists already (unique violation, also after
    waiting for a concurrent transaction that held it), the savepoint is rolled back and
    the rows go in with ``fallback`` (``ON CONFLICT …``, ``RETURNING …``), whose result is
    returned. Fewer rows go in with ``fallback`` at once. Either way the table ends as
    ``insert_arrays(…, fallback)`` would leave it.
    """
    rows = max((len(values) for values in arrays.values()), default=0)
    if rows >= PLAIN_INSERT_FROM:
        try:
            async with conn.begin_nested():
                await insert_arrays(conn, table, arrays, once=once)
            return None
        except IntegrityError as err:
            if sqlstate_of(err) != _UNIQUE_VIOLATION:
                raise
    return await insert_arrays(conn, table, arrays, fallback, once=once)


@lru_cache(maxsize=64)
def _update_sql(table: Table, key: str, columns: tuple[str, ...]) -> TextClause:
    """``UPDATE table SET col = r<i> … FROM (the JSON rows) WHERE table.key = r<0>``."""
    sets = ", ".join(
        f"{_quote(name)} = {_pick(table, name, i)}" for i, name in enumerate(columns, start=1)
    )
    t = _quote(table.name)
    return text(f"UPDATE {t} SET {sets} {_ROWS} WHERE {t}.{_quote(key)} = {_pick(table, key, 0)}")


async def update_arrays(
    conn: AsyncConnection, table: Table, key: str, arrays: Mapping[str, Sequence[Any]]
) -> None:
    """PostgreSQL only: one UPDATE of every row whose ``key`` is in ``arrays[key]``, each
    column of ``arrays`` (NULLs included) set to that row's value. Keys are distinct."""
    columns = tuple(name for name in arrays if name != key)
    rows = _rows_json([arrays[key], *(arrays[name] for name in columns)])
    await conn.execute(_update_sql(table, key, columns), {"rows": rows})


def column_arrays(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Rows (dicts with the same keys) → column name → values, for :func:`insert_arrays`."""
    if not rows:
        return {}
    return {name: [row[name] for row in rows] for name in rows[0]}
