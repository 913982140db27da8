"""Set-based statements for a whole batch: arrays on PostgreSQL, portable Core on SQLite.

On PostgreSQL asyncpg sends a Python list as ONE array parameter, so a 2,000-row insert is
``INSERT … SELECT … FROM unnest($1, $2, …)`` with one parameter per column, and a lookup is
``col = ANY($1)``, instead of 2,000 bound rows (executemany) or an IN list of thousands of
rendered parameters (SQLAlchemy renders those on every call; that was most of a batch's
time). SQLite has no arrays: callers keep the Core statements there (``is_postgres``).

Values go in as they are; only ``UtcDateTime`` (naive → UTC) and JSON (serialized with
orjson, like the engines' ``json_serializer``) are converted here, as the column types would.
Assignment casts still check each value (an over-long string fails with SQLSTATE 22001).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

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
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from wa_bridge.store._chunks import chunks

__all__ = ["column_arrays", "insert_arrays", "is_postgres", "members", "update_arrays"]


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


def _array_type(column: Column[Any]) -> str:
    """The element type the array parameter is sent as (assignment casts do the rest)."""
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


@lru_cache(maxsize=128)
def _insert_sql(
    table: Table, columns: tuple[str, ...], shared: tuple[bool, ...], suffix: str
) -> TextClause:
    """Parameter ``a<i>`` is column i's array, or its one value when ``shared[i]``."""
    arrays = [(i, name) for i, name in enumerate(columns) if not shared[i]]
    params = ", ".join(f"CAST(:a{i} AS {_array_type(table.c[name])}[])" for i, name in arrays)
    aliases = ", ".join(f"c{i}" for i, _ in arrays)
    picked = []
    for i, name in enumerate(columns):
        value = f"CAST(:a{i} AS {_array_type(table.c[name])})" if shared[i] else f"u.c{i}"
        is_json = isinstance(_base_type(table.c[name]), JSON)
        picked.append(f"CAST({value} AS jsonb)" if is_json else value)
    names = ", ".join(_quote(name) for name in columns)
    return text(
        f"INSERT INTO {_quote(table.name)} ({names}) SELECT {', '.join(picked)} "
        f"FROM unnest({params}) AS u({aliases}) {suffix}"
    )


def _is_shared(values: list[Any]) -> bool:
    """True when every row holds the same value, of the same type (e.g. the batch's time)."""
    first = values[0]
    kind = type(first)
    return values.count(first) == len(values) and all(type(v) is kind for v in values)


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _converter(column: Column[Any]) -> Any:
    kind = _base_type(column)
    if isinstance(kind, JSON):
        return _json_text
    if isinstance(kind, DateTime):
        return _utc
    return None


async def insert_arrays(
    conn: AsyncConnection,
    table: Table,
    arrays: Mapping[str, Sequence[Any]],
    suffix: str = "",
) -> CursorResult[*tuple[Any, ...]]:
    """PostgreSQL only: ``INSERT INTO table (cols) SELECT … FROM unnest(arrays) {suffix}``.

    ``arrays`` maps column name → one value per row (all the same length, at least one
    column not all NULL); rows are inserted in that order. ``suffix`` is raw SQL
    (``ON CONFLICT …``, ``RETURNING …``): constants only, never data.
    """
    # A column that is NULL in every row is left out: the insert makes it NULL anyway and
    # EXCLUDED still has it (NULL) for ON CONFLICT. asyncpg inspects every array element,
    # so this saves ~1 ms of CPU per column per 2,000 rows (many CRM fields are unset).
    # A value shared by every row (the batch's time, a constant outcome) goes once, as a
    # scalar; the first column always goes as an array, which sets the row count.
    columns = tuple(name for name, values in arrays.items() if any(v is not None for v in values))
    params: dict[str, Any] = {}
    shared: list[bool] = []
    for i, name in enumerate(columns):
        convert = _converter(table.c[name])
        values = list(arrays[name]) if convert is None else [convert(v) for v in arrays[name]]
        is_shared = i > 0 and _is_shared(values)
        params[f"a{i}"] = values[0] if is_shared else values
        shared.append(is_shared)
    return await conn.execute(_insert_sql(table, columns, tuple(shared), suffix), params)


@lru_cache(maxsize=64)
def _update_sql(table: Table, key: str, columns: tuple[str, ...]) -> TextClause:
    """``UPDATE table SET col = u.c<i> … FROM unnest(…) WHERE table.key = u.c0``."""
    names = (key, *columns)
    params = ", ".join(
        f"CAST(:a{i} AS {_array_type(table.c[name])}[])" for i, name in enumerate(names)
    )
    sets = []
    for i, name in enumerate(columns, start=1):
        is_json = isinstance(_base_type(table.c[name]), JSON)
        sets.append(f"{_quote(name)} = " + (f"CAST(u.c{i} AS jsonb)" if is_json else f"u.c{i}"))
    aliases = ", ".join(f"c{i}" for i in range(len(names)))
    t = _quote(table.name)
    return text(
        f"UPDATE {t} SET {', '.join(sets)} FROM unnest({params}) AS u({aliases}) "
        f"WHERE {t}.{_quote(key)} = u.c0"
    )


async def update_arrays(
    conn: AsyncConnection, table: Table, key: str, arrays: Mapping[str, Sequence[Any]]
) -> None:
    """PostgreSQL only: one UPDATE of every row whose ``key`` is in ``arrays[key]``, each
    column of ``arrays`` (NULLs included) set to that row's value. Keys are distinct."""
    columns = tuple(name for name in arrays if name != key)
    params: dict[str, Any] = {"a0": list(arrays[key])}
    for i, name in enumerate(columns, start=1):
        convert = _converter(table.c[name])
        values = arrays[name]
        params[f"a{i}"] = list(values) if convert is None else [convert(v) for v in values]
    await conn.execute(_update_sql(table, key, columns), params)


def column_arrays(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Rows (dicts with the same keys) → column name → values, for :func:`insert_arrays`."""
    if not rows:
        return {}
    return {name: [row[name] for row in rows] for name in rows[0]}
