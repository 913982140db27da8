"""The built-in SQL CRM: crm_contacts / crm_cases / crm_notes / crm_outcomes / crm_consents /
crm_deals (a case's sale: one row per case, keyed by its case key).

Each operation upserts its record by natural key (contact_key, case_key, the note's
message id or the op's idempotency key), so applying an op twice leaves one row with the
same values. Only non-null fields overwrite: a status-only note update keeps the body.
Fields outside the shared vocabulary go into the record's ``attributes`` JSON. A field's
write mode (``CrmOperation.write_modes``) is honoured: an ``on_create`` field is written
only when its row is inserted, an ``if_empty`` one only where the column is NULL (the
attribute absent), so an agent's edit of a name in these tables is kept.

``apply_in(tx, ops)`` writes inside the worker's own store transaction (ledger and CRM rows
commit together: exactly-once for this CRM). Ops are grouped by kind (the tables are
independent, so order only matters within a table, and is kept there) and each group is one
multi-row ``INSERT … ON CONFLICT DO UPDATE`` (one more for rows whose fields carry write
modes that clash with the others'), all inside one savepoint: a rejected group leaves the
caller's transaction usable, with none of the call's writes in it. A record the op would
not change is not rewritten (its ``updated_at`` stays). On PostgreSQL the group is sent as
one JSON parameter and ``RETURNING (xmax = 0)`` says which records are new; SQLite SELECTs
the existing keys first.
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
from wa_bridge.connectors.base import CrmResult, OpResult, Vendor, Wiring
from wa_bridge.connectors.sql_merge import SQL_MERGER
from wa_bridge.errors import ConfigError, CrmRejected, CrmUnavailable, StoreUnavailable
from wa_bridge.operations import CrmOperation, OperationKind, WriteMode
from wa_bridge.store.book import RecordBook
from wa_bridge.store.bulk import chunks, insert_arrays, insert_for, is_postgres
from wa_bridge.store.db import create_engine, is_connection_error, sqlstate_of
from wa_bridge.store.sql import Clock, SqlStore, SqlStoreTx, utc_now
from wa_bridge.store.tables import (
    crm_cases,
    crm_consents,
    crm_contacts,
    crm_deals,
    crm_notes,
    crm_outcomes,
)

if TYPE_CHECKING:
    from wa_bridge.settings import Settings

__all__ = ["VENDOR", "SqlCrmConnector"]

Row = dict[str, Any]
Modes = dict[str, WriteMode]  # field (column or attribute) → its mode, when not "always"


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
                "queue",
                "conversation_id",
                "closed_at",
                "close_reason",
                "outcome",
                "outcome_value",
                "outcome_currency",
                "csat",
                "csat_at",
                "first_response_at",
                "frt_s",
                "handling_s",
                "fcr",
                "handoff_at",
                "intents",
                "captured",
            }
        ),
        ("contact_key",),
        json_fields=frozenset({"tags", "intents"}),
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
    "upsert_deal": _Spec(
        crm_deals,
        "deal_key",
        lambda op: require_key(op, "case_key"),
        frozenset({"name", "stage", "amount", "currency", "source", "closed_at", "occurred_at"}),
        ("contact_key", "case_key"),
        stamped=("created_at", "updated_at"),
    ),
}
_ORDER: Final[tuple[OperationKind, ...]] = tuple(_SPECS)
_NATURAL_KEY_FIELDS: Final = frozenset({"message_id"})


def _row(spec: _Spec, op: CrmOperation, now: datetime) -> tuple[str, Row, Modes]:
    """The operation's record as a row: the columns it gives (a column it leaves out is
    NULL: written by no mode), its keys, time stamps and other fields (``attributes``)."""
    key = spec.key(op)
    columns, json_fields = spec.fields, spec.json_fields
    row: Row = {}
    attributes: dict[str, Any] = {}
    for name, value in op.fields.items():
        if name in columns:
            row[name] = json_value(value) if name in json_fields else value
        elif name not in _NATURAL_KEY_FIELDS or spec.key_column != "note_key":
            attributes[name] = json_value(value)
    row[spec.key_column] = key
    for ref in spec.refs:
        row[ref] = getattr(op, ref)
    for stamp in spec.stamped:
        row[stamp] = now
    row["attributes"] = attributes or None
    if not op.write_modes:  # the usual case: every field written "always"
        return key, row, {}
    # (a mapping's field names are identifiers: they go into the SQL as literals)
    modes: Modes = {
        name: mode
        for name, mode in op.write_modes.items()
        if mode != "always" and name.isidentifier() and (name in columns or name in attributes)
    }
    return key, row, modes


def _overlay(old: Row, new: Row, modes: Modes, new_modes: Modes) -> Row:
    """``new``'s non-null values over ``old``: one written ``always`` replaces the old
    value, any other only a missing one; ``modes`` follows the values kept."""
    out = dict(old)
    for name, value in new.items():
        if value is None:
            continue
        mode = new_modes.get(name)
        if mode is None or out.get(name) is None:
            out[name] = value
            if mode is None:
                modes.pop(name, None)
            else:
                modes[name] = mode
    return out


def _merge(old: Row, old_modes: Modes, new: Row, new_modes: Modes) -> tuple[Row, Modes]:
    """Two ops of a batch on one record, as one row: the later op applied after the earlier
    (where their modes cannot both hold, the earlier op's value and mode stay)."""
    if new == old and new_modes == old_modes:
        return old, old_modes  # the same record again (a contact's every message): as it is
    modes = dict(old_modes)
    columns = {k: v for k, v in new.items() if k != "attributes"}
    merged = _overlay(old, columns, modes, new_modes)
    attributes = _overlay(
        old.get("attributes") or {}, new.get("attributes") or {}, modes, new_modes
    )
    merged["attributes"] = attributes or None
    merged.update({k: old[k] for k in ("created_at",) if k in old})
    return merged, modes


def _group_for(
    groups: list[tuple[dict[str, WriteMode], list[Row]]], present: tuple[str, ...], modes: Modes
) -> list[Row]:
    """The members of the first group whose modes fit a row of this shape (widened to
    it), or of a new group."""
    wants = {name: modes.get(name, "always") for name in present}
    for fixed, members in groups:
        if all(fixed.get(name, mode) == mode for name, mode in wants.items()):
            fixed.update(wants)
            return members
    groups.append((wants, []))
    return groups[-1][1]


def _statements(
    rows: list[tuple[Row, Modes]],
) -> list[tuple[tuple[tuple[str, WriteMode], ...], list[Row]]]:
    """Rows grouped into as few statements as their write modes allow, each with the modes
    it writes by. A field a row leaves out (NULL, no attribute) fits any mode: every mode
    keeps the stored value then."""
    if not any(modes for _, modes in rows):
        return [((), [row for row, _ in rows])]
    groups: list[tuple[dict[str, WriteMode], list[Row]]] = []
    # A row's group depends only on its present fields and their modes: rows of one
    # shape (most of a batch) go where the first of them went. (The first group that
    # took a shape stays open to it: groups only gain fields the shape leaves out or
    # fixes as it does; the groups before it never become open to it.)
    placed: dict[tuple[tuple[str, ...], tuple[tuple[str, WriteMode], ...]], list[Row]] = {}
    for row, modes in rows:
        present = tuple(_present(row))
        shape = (present, tuple(modes.items()))
        members = placed.get(shape)
        if members is None:
            members = placed[shape] = _group_for(groups, present, modes)
        members.append(row)
    return [
        (tuple(sorted((n, m) for n, m in fixed.items() if m != "always")), members)
        for fixed, members in groups
    ]


def _present(row: Row) -> list[str]:
    attributes = row.get("attributes") or {}
    return [k for k, v in row.items() if v is not None and k != "attributes"] + [*attributes]


def _merge_attributes(table: Table, excluded: Any, modes: Modes) -> ColumnElement[Any]:
    """SQLite: the stored attributes with the incoming ones merged in, by their write modes
    (PostgreSQL merges them in ``_pg_conflict_sql``)."""
    current, incoming = table.c.attributes, excluded.attributes
    if not modes:
        merged: ColumnElement[Any] = func.json_patch(func.coalesce(current, "{}"), incoming)
    else:
        # the incoming keys but on_create ones, under the stored ones (if_empty), then the
        # always-written incoming keys over that
        kept = [f'$."{n}"' for n, m in modes.items() if m == "on_create"]
        written = [f'$."{n}"' for n in modes]
        under = func.json_patch(func.json_remove(incoming, *kept), func.coalesce(current, "{}"))
        merged = func.nullif(func.json_patch(under, func.json_remove(incoming, *written)), "{}")
    return case((incoming.is_(None), current), else_=merged)


class SqlCrmConnector:
    """``CrmConnector`` for the built-in SQL CRM tables (same database as the store)."""

    name = "sql"
    instance = "sql"  # its tables are the store: it keeps no record book
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

    async def apply(
        self, ops: Sequence[CrmOperation], book: RecordBook | None = None
    ) -> list[OpResult]:
        """Apply ``ops`` in one transaction of its own; raise CrmRejected / CrmUnavailable
        (a refused group refuses the whole call: nothing commits). ``book`` is unused."""
        try:
            async with self._engine.begin() as conn:
                return list(await self.apply_in(conn, ops))
        except exc.SQLAlchemyError as err:
            raise _translate(err, "transaction") from (getattr(err, "orig", None) or err)
        except (OSError, StoreUnavailable) as err:
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
        what = "savepoint"  # what a database error was about, for CrmRejected's message
        try:
            # one savepoint for all groups (two round trips a batch, not two a group): a
            # rejected group leaves the caller's transaction usable, with none of these
            # writes in it
            async with conn.begin_nested():
                for kind in _ORDER:
                    indexes = by_kind.get(kind)
                    if indexes:
                        group = [ops[i] for i in indexes]
                        what = f"{len(group)} {kind} op(s) from event {group[0].event_id}"
                        for i, result in zip(
                            indexes, await self._upsert(conn, kind, group, now), strict=True
                        ):
                            results[i] = result
                what = "savepoint"
        except exc.SQLAlchemyError as err:
            cause = getattr(err, "orig", None) or err
            if is_connection_error(err):
                # the caller's transaction is the state store's: our own database is
                # down (or full), which the worker waits out; it is not the CRM's answer
                raise StoreUnavailable(
                    f"state database unavailable during sql CRM writes ({type(err).__name__}); "
                    "retry later"
                ) from cause
            raise _translate(err, what) from cause
        return [r for r in results if r is not None]

    async def _upsert(
        self, conn: AsyncConnection, kind: OperationKind, ops: Sequence[CrmOperation], now: datetime
    ) -> list[CrmResult]:
        spec = _SPECS[kind]
        keys: list[str] = []
        merged: dict[str, tuple[Row, Modes]] = {}
        for op in ops:
            key, row, modes = _row(spec, op, now)
            keys.append(key)
            merged[key] = _merge(*merged[key], row, modes) if key in merged else (row, modes)
        existing: set[str] = set()
        for write_modes, rows in _statements(list(merged.values())):
            if is_postgres(conn):
                existing |= await _upsert_arrays(conn, spec, rows, write_modes)
            else:
                existing |= await _upsert_rows(conn, spec, rows, dict(write_modes))
        seen: set[str] = set()
        out = []
        for key in keys:
            out.append(CrmResult(crm_id=key, created=key not in existing and key not in seen))
            seen.add(key)
        return out

    async def aclose(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()


def _build(settings: Settings, wiring: Wiring) -> SqlCrmConnector:
    target = wiring.engine if wiring.engine is not None else settings.database_url
    if target is None:
        raise ConfigError("WA_BRIDGE_DATABASE_URL is required for connector sql")
    return SqlCrmConnector(target)


VENDOR: Final = Vendor(build=_build, merger=SQL_MERGER)


def _columns(spec: _Spec, rows: Sequence[Row]) -> list[str]:
    """The columns any of ``rows`` holds, in the table's order (a statement writes only
    those: every mode keeps a stored value where the rows have none)."""
    held: set[str] = set().union(*rows)
    return [column.name for column in spec.table.columns if column.name in held]


def _update_columns(spec: _Spec, columns: Sequence[str]) -> list[str]:
    """Columns an upsert may overwrite (when the new value is not null)."""
    return [n for n in columns if n not in (spec.key_column, "created_at", "attributes")]


def _compared_columns(spec: _Spec, columns: list[str]) -> list[str]:
    """Columns whose change makes an upsert write: all but the time stamps."""
    return [n for n in columns if n not in spec.stamped]


def _column_update(t: str, name: str, mode: WriteMode | None) -> str:
    """The value a conflicting row's column takes: on_create keeps the stored one, if_empty
    fills only a NULL, always takes a new non-null value."""
    if mode == "on_create":
        return f'{t}."{name}"'
    if mode == "if_empty":
        return f'COALESCE({t}."{name}", EXCLUDED."{name}")'
    return f'COALESCE(EXCLUDED."{name}", {t}."{name}")'


def _text_array(names: list[str]) -> str:
    return "CAST(ARRAY[" + ", ".join(f"'{n}'" for n in names) + "] AS text[])"


def _attributes_update(t: str, modes: dict[str, WriteMode]) -> str:
    current = f"COALESCE({t}.attributes, CAST('{{}}' AS jsonb))"
    if not modes:
        merged = f"{current} || EXCLUDED.attributes"
    else:
        # the incoming keys but on_create ones, under the stored ones (if_empty), then the
        # always-written incoming keys over that
        kept = _text_array([n for n, m in modes.items() if m == "on_create"])
        under = f"(EXCLUDED.attributes - {kept}) || {current}"
        merged = f"NULLIF(({under}) || (EXCLUDED.attributes - {_text_array([*modes])}), "
        merged += "CAST('{}' AS jsonb))"
    return f"CASE WHEN EXCLUDED.attributes IS NULL THEN {t}.attributes ELSE {merged} END"


# keyed by the columns a statement's rows hold (which fields a batch's operations gave),
# so a few shapes per kind and write modes
@lru_cache(maxsize=256)
def _pg_conflict_sql(
    spec: _Spec, columns: tuple[str, ...], modes: tuple[tuple[str, WriteMode], ...] = ()
) -> str:
    t = f'"{spec.table.name}"'
    by_name = dict(modes)
    new = {n: _column_update(t, n, by_name.get(n)) for n in columns}
    attribute_modes = {n: m for n, m in modes if n not in spec.fields}
    new["attributes"] = _attributes_update(t, attribute_modes)
    compared = [*_compared_columns(spec, list(columns)), "attributes"]
    changed = " OR ".join(f'{new[n]} IS DISTINCT FROM {t}."{n}"' for n in compared)
    sets = ", ".join(f'"{n}" = {value}' for n, value in new.items())
    # An unchanged record is not rewritten (no dead row version, no WAL, updated_at kept)
    # and so not returned. Of the returned rows, xmax = 0 marks a freshly inserted one.
    return (
        f'ON CONFLICT ("{spec.key_column}") DO UPDATE SET {sets} WHERE {changed} '
        f'RETURNING "{spec.key_column}", (xmax = 0)'
    )


async def _upsert_arrays(
    conn: AsyncConnection,
    spec: _Spec,
    rows: list[Row],
    modes: tuple[tuple[str, WriteMode], ...] = (),
) -> set[str]:
    """PostgreSQL: one INSERT … ON CONFLICT from arrays; return the keys that existed."""
    columns = _columns(spec, rows)
    suffix = _pg_conflict_sql(spec, tuple(_update_columns(spec, columns)), modes)
    arrays = {name: [row.get(name) for row in rows] for name in columns}
    result = await insert_arrays(conn, spec.table, arrays, suffix, once=spec.stamped)
    inserted = {str(key) for key, is_new in result if is_new}
    return {row[spec.key_column] for row in rows} - inserted


async def _upsert_rows(
    conn: AsyncConnection, spec: _Spec, rows: list[Row], modes: Modes | None = None
) -> set[str]:
    """Portable (SQLite): SELECT the existing keys, then a multi-row upsert."""
    table = spec.table
    key_col = table.c[spec.key_column]
    existing: set[str] = set()
    for part in chunks([row[spec.key_column] for row in rows]):
        existing.update((await conn.execute(select(key_col).where(key_col.in_(part)))).scalars())
    stmt = insert_for(conn, table)
    held = _columns(spec, rows)
    rows = [{name: row.get(name) for name in held} for row in rows]  # one shape for all
    columns = _update_columns(spec, held)
    modes = modes or {}
    updates: dict[str, Any] = {}
    for name in columns:
        mode = modes.get(name)
        if mode == "on_create":
            updates[name] = table.c[name]
        elif mode == "if_empty":
            updates[name] = func.coalesce(table.c[name], stmt.excluded[name])
        else:
            updates[name] = func.coalesce(stmt.excluded[name], table.c[name])
    attribute_modes = {n: m for n, m in modes.items() if n not in spec.fields}
    updates["attributes"] = _merge_attributes(table, stmt.excluded, attribute_modes)
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
    return sqlstate_of(err)[:2] in ("22", "23")  # PostgreSQL data exception / integrity violation


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
