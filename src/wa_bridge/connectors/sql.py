"""The built-in SQL CRM: crm_contacts / crm_cases / crm_notes / crm_outcomes / crm_consents.

Each operation upserts its record by natural key (contact_key, case_key, the note's
message id or the op's idempotency key), so applying an op twice leaves one row with the
same values. Only non-null fields overwrite: a status-only note update keeps the body.
Fields outside the shared vocabulary go into the record's ``attributes`` JSON.

``apply_in(tx, ops)`` writes inside the worker's own store transaction (ledger and CRM rows
commit together: exactly-once for this CRM). Ops are grouped by kind (the tables are
independent, so order only matters within a table, and is kept there) and each group is one
multi-row ``INSERT … ON CONFLICT DO UPDATE`` inside a savepoint: a rejected group leaves
the caller's transaction usable. A record the op would not change is not rewritten (its
``updated_at`` stays). On PostgreSQL the group is sent as arrays (``unnest``) and
``RETURNING (xmax = 0)`` says which records are new; SQLite SELECTs the existing keys first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Table, case, exc, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from wa_bridge.connectors._records import json_value, note_key, require_key
from wa_bridge.connectors.base import CrmResult, Vendor
from wa_bridge.errors import ConfigError, CrmRejected, CrmUnavailable
from wa_bridge.operations import CrmOperation, OperationKind
from wa_bridge.store.bulk import chunks, column_arrays, insert_arrays, insert_for, is_postgres
from wa_bridge.store.db import create_engine, is_connection_error
from wa_bridge.store.sql import Clock, SqlStore, SqlStoreTx, utc_now
from wa_bridge.store.tables import crm_cases, crm_consents, crm_contacts, crm_notes, crm_outcomes

if TYPE_CHECKING:
    from wa_bridge.settings import Settings

__all__ = ["VENDOR", "SqlCrmConnector"]

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Spec:
    table: Table
    key_column: str
    key: Callable[[CrmOperation], str]  # raises UnkeyedOperation when it has none
    fields: frozenset[str]  # vocabulary fields stored as columns
    refs: tuple[str, ...]  # contact_key / case_key columns filled from the op
    json_fields: frozenset[str] = frozenset()
    stamped: tuple[str, ...] = ()  # time columns set to "now"


_SPECS: Final[dict[OperationKind, _Spec]] = {
    "upsert_contact": _Spec(
        crm_contacts,
        "contact_key",
        lambda op: require_key(op, "contact_key"),
        frozenset(
            {"phone_e164", "wa_id", "bsuid", "parent_bsuid", "username", "name", "country", "email"}
        ),
        (),
        stamped=("created_at", "updated_at"),
    ),
    "upsert_case": _Spec(
        crm_cases,
        "case_key",
        lambda op: require_key(op, "case_key"),
        frozenset(
            {
                "status",
                "channel",
                "subject",
                "agent",
                "reason",
                "tags",
                "ctwa_clid",
                "source_url",
                "ad_id",
                "utm_source",
                "utm_medium",
                "utm_campaign",
                "opened_at",
            }
        ),
        ("contact_key",),
        json_fields=frozenset({"tags"}),
        stamped=("updated_at",),
    ),
    "add_note": _Spec(
        crm_notes,
        "note_key",
        note_key,
        frozenset(
            {
                "direction",
                "message_type",
                "body",
                "media_id",
                "status",
                "status_error",
                "occurred_at",
            }
        ),
        ("case_key", "contact_key"),
        stamped=("created_at", "updated_at"),
    ),
    "record_outcome": _Spec(
        crm_outcomes,
        "outcome_key",
        lambda op: op.idempotency_key,
        frozenset({"outcome", "value", "reason", "csat", "occurred_at"}),
        ("case_key", "contact_key"),
    ),
    "set_consent": _Spec(
        crm_consents,
        "consent_key",
        lambda op: op.idempotency_key,
        frozenset({"channel", "purpose", "status", "evidence", "occurred_at"}),
        ("contact_key",),
    ),
}
_ORDER: Final[tuple[OperationKind, ...]] = tuple(_SPECS)
_NATURAL_KEY_FIELDS: Final = frozenset({"message_id"})


def _row(spec: _Spec, op: CrmOperation, now: datetime) -> tuple[str, Row]:
    key = spec.key(op)
    row: Row = {name: None for name in spec.fields}
    attributes: dict[str, Any] = {}
    for name, value in op.fields.items():
        if name in spec.fields:
            row[name] = json_value(value) if name in spec.json_fields else value
        elif name not in _NATURAL_KEY_FIELDS or spec.key_column != "note_key":
            attributes[name] = json_value(value)
    row[spec.key_column] = key
    for ref in spec.refs:
        row[ref] = getattr(op, ref)
    for stamp in spec.stamped:
        row[stamp] = now
    row["attributes"] = attributes or None
    return key, row


def _merge(old: Row, new: Row) -> Row:
    merged = {k: (v if v is not None else old.get(k)) for k, v in new.items()}
    if old.get("attributes") and new.get("attributes"):
        merged["attributes"] = {**old["attributes"], **new["attributes"]}
    merged.update({k: old[k] for k in ("created_at",) if k in old})
    return merged


def _merge_attributes(table: Table, excluded: Any) -> ColumnElement[Any]:
    """SQLite: the stored attributes patched with the incoming ones (PostgreSQL merges them
    in ``_pg_conflict_sql``)."""
    current, incoming = table.c.attributes, excluded.attributes
    merged = func.json_patch(func.coalesce(current, "{}"), incoming)
    return case((incoming.is_(None), current), else_=merged)


class SqlCrmConnector:
    """``CrmConnector`` for the built-in SQL CRM tables (same database as the store)."""

    name = "sql"
    max_batch = 2000

    def __init__(self, target: SqlStore | AsyncEngine | str, *, clock: Clock = utc_now) -> None:
        self._owns_engine = isinstance(target, str)
        if isinstance(target, str):
            self._engine = create_engine(target)
        elif isinstance(target, SqlStore):
            self._engine = target.engine
        else:
            self._engine = target
        self._clock = clock

    async def apply(self, ops: Sequence[CrmOperation]) -> Sequence[CrmResult]:
        """Apply ``ops`` in one transaction of its own; raise CrmRejected / CrmUnavailable."""
        try:
            async with self._engine.begin() as conn:
                return await self.apply_in(conn, ops)
        except exc.SQLAlchemyError as err:
            raise _translate(err, "transaction") from (getattr(err, "orig", None) or err)
        except OSError as err:
            raise CrmUnavailable(f"sql CRM database unreachable ({type(err).__name__})") from err

    async def apply_in(
        self, tx: SqlStoreTx | AsyncConnection, ops: Sequence[CrmOperation]
    ) -> Sequence[CrmResult]:
        """Apply ``ops`` inside the caller's transaction (nothing commits here)."""
        conn = tx.connection if isinstance(tx, SqlStoreTx) else tx
        now = self._clock()
        by_kind: dict[OperationKind, list[int]] = {}
        for i, op in enumerate(ops):
            by_kind.setdefault(op.kind, []).append(i)
        results: list[CrmResult | None] = [None] * len(ops)
        for kind in _ORDER:
            indexes = by_kind.get(kind)
            if indexes:
                group = [ops[i] for i in indexes]
                for i, result in zip(
                    indexes, await self._upsert(conn, kind, group, now), strict=True
                ):
                    results[i] = result
        return [r for r in results if r is not None]

    async def _upsert(
        self, conn: AsyncConnection, kind: OperationKind, ops: Sequence[CrmOperation], now: datetime
    ) -> list[CrmResult]:
        spec = _SPECS[kind]
        keys: list[str] = []
        merged: dict[str, Row] = {}
        for op in ops:
            key, row = _row(spec, op, now)
            keys.append(key)
            merged[key] = _merge(merged[key], row) if key in merged else row
        try:
            async with conn.begin_nested():
                if is_postgres(conn):
                    existing = await _upsert_arrays(conn, spec, list(merged.values()))
                else:
                    existing = await _upsert_rows(conn, spec, list(merged.values()))
        except exc.SQLAlchemyError as err:
            raise _translate(err, f"{len(ops)} {kind} op(s) from event {ops[0].event_id}") from (
                getattr(err, "orig", None) or err
            )
        seen: set[str] = set()
        out = []
        for key in keys:
            out.append(CrmResult(crm_id=key, created=key not in existing and key not in seen))
            seen.add(key)
        return out

    async def aclose(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()


def _build(settings: Settings, engine: AsyncEngine | None) -> SqlCrmConnector:
    target = engine if engine is not None else settings.database_url
    if target is None:
        raise ConfigError("WA_BRIDGE_DATABASE_URL is required for connector sql")
    return SqlCrmConnector(target)


VENDOR: Final = Vendor(build=_build)


def _update_columns(spec: _Spec, row: Row) -> list[str]:
    """Columns an upsert may overwrite (when the new value is not null)."""
    return [n for n in row if n not in (spec.key_column, "created_at", "attributes")]


def _compared_columns(spec: _Spec, columns: list[str]) -> list[str]:
    """Columns whose change makes an upsert write: all but the time stamps."""
    return [n for n in columns if n not in spec.stamped]


@lru_cache(maxsize=64)
def _pg_conflict_sql(spec: _Spec, columns: tuple[str, ...]) -> str:
    t = f'"{spec.table.name}"'
    new = {n: f'COALESCE(EXCLUDED."{n}", {t}."{n}")' for n in columns}
    new["attributes"] = (
        f"CASE WHEN EXCLUDED.attributes IS NULL THEN {t}.attributes "
        f"ELSE COALESCE({t}.attributes, CAST('{{}}' AS jsonb)) || EXCLUDED.attributes END"
    )
    compared = [*_compared_columns(spec, list(columns)), "attributes"]
    changed = " OR ".join(f'{new[n]} IS DISTINCT FROM {t}."{n}"' for n in compared)
    sets = ", ".join(f'"{n}" = {value}' for n, value in new.items())
    # An unchanged record is not rewritten (no dead row version, no WAL, updated_at kept)
    # and so not returned. Of the returned rows, xmax = 0 marks a freshly inserted one.
    return (
        f'ON CONFLICT ("{spec.key_column}") DO UPDATE SET {sets} WHERE {changed} '
        f'RETURNING "{spec.key_column}", (xmax = 0)'
    )


async def _upsert_arrays(conn: AsyncConnection, spec: _Spec, rows: list[Row]) -> set[str]:
    """PostgreSQL: one INSERT … ON CONFLICT from arrays; return the keys that existed."""
    suffix = _pg_conflict_sql(spec, tuple(_update_columns(spec, rows[0])))
    result = await insert_arrays(conn, spec.table, column_arrays(rows), suffix)
    inserted = {str(key) for key, is_new in result if is_new}
    return {row[spec.key_column] for row in rows} - inserted


async def _upsert_rows(conn: AsyncConnection, spec: _Spec, rows: list[Row]) -> set[str]:
    """Portable (SQLite): SELECT the existing keys, then a multi-row upsert."""
    table = spec.table
    key_col = table.c[spec.key_column]
    existing: set[str] = set()
    for part in chunks([row[spec.key_column] for row in rows]):
        existing.update((await conn.execute(select(key_col).where(key_col.in_(part)))).scalars())
    stmt = insert_for(conn, table)
    columns = _update_columns(spec, rows[0])
    updates: dict[str, Any] = {
        name: func.coalesce(stmt.excluded[name], table.c[name]) for name in columns
    }
    updates["attributes"] = _merge_attributes(table, stmt.excluded)
    changed = or_(
        *(
            updates[name].is_distinct_from(table.c[name])
            for name in [*_compared_columns(spec, columns), "attributes"]
        )
    )
    stmt = stmt.on_conflict_do_update(index_elements=[spec.key_column], set_=updates, where=changed)
    for part_rows in chunks(rows, 1000):
        await conn.execute(stmt, list(part_rows))
    return existing


def _is_data_error(err: exc.SQLAlchemyError) -> bool:
    if isinstance(err, exc.IntegrityError | exc.DataError):
        return True
    if not isinstance(err, exc.DBAPIError):
        return True  # a value our types could not bind: the data's fault
    sqlstate = str(getattr(err.orig, "sqlstate", None) or "")
    return sqlstate[:2] in ("22", "23")  # PostgreSQL data exception / integrity violation


def _translate(err: exc.SQLAlchemyError, what: str) -> Exception:
    """CrmUnavailable, CrmRejected (with the database's own message) or ``err`` itself.

    Our errors are chained to the driver's error, not SQLAlchemy's wrapper, whose text
    carries the statement's parameters (personal data).
    """
    if is_connection_error(err):
        return CrmUnavailable(f"sql CRM database unavailable ({type(err).__name__}); retry later")
    if not _is_data_error(err):
        return err  # a bug or a schema problem (missing table): not the data's fault
    orig = getattr(err, "orig", None) or err
    text = str(orig).strip() if orig is not err else str(err).split("\n")[0]
    message = (text.splitlines()[0] if text else type(orig).__name__)[:500]
    return CrmRejected(
        f"sql CRM rejected {what}: {type(orig).__name__}",
        status_code=400,
        crm_error=message,
    )
