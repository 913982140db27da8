"""Merging two contacts in the built-in SQL CRM: rows move, and the merge can be undone.

In the state store's own transaction (so it commits with our maps): the other contact's
cases, notes, outcomes and consents (``crm_cases`` … ``crm_consents``, by ``contact_key``)
move to the kept contact; the kept contact's empty columns take the other's values (as
HubSpot's merge does); the other's ``crm_contacts`` row is deleted (when the kept contact
has no row yet, the other's row is renamed instead). ``undo`` records the row keys moved,
the columns filled and the deleted row, so ``unmerge`` puts each back: rows written to
the kept contact after the merge stay with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.connectors.base import CrmConnector
from wa_bridge.connectors.merging import (
    ContactMerger,
    CrmMergeResult,
    MergeRequest,
    UnmergeRequest,
)
from wa_bridge.errors import ConfigError
from wa_bridge.store.bulk import chunks
from wa_bridge.store.tables import crm_cases, crm_consents, crm_contacts, crm_notes, crm_outcomes

__all__ = ["SQL_MERGER", "merge_contacts", "unmerge_contacts"]

# The tables whose rows name a contact (``contact_key``), each with its key column.
MOVED: Final[tuple[tuple[Table, str], ...]] = tuple(
    (table, table.primary_key.columns.values()[0].name)
    for table in (crm_cases, crm_notes, crm_outcomes, crm_consents)
)
FILLABLE: Final = (
    "phone_e164",
    "wa_id",
    "bsuid",
    "parent_bsuid",
    "username",
    "name",
    "country",
    "email",
)
_TIMES: Final = ("created_at", "updated_at")


def _conn(conn: AsyncConnection | None) -> AsyncConnection:
    if conn is None:
        raise ConfigError("the SQL CRM merges inside the state store's transaction: none given")
    return conn


async def _contact(conn: AsyncConnection, key: str) -> dict[str, Any] | None:
    row = (
        (await conn.execute(select(crm_contacts).where(crm_contacts.c.contact_key == key)))
        .mappings()
        .first()
    )
    return {str(k): v for k, v in row.items()} if row is not None else None


def _snapshot(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``crm_contacts`` row as JSON data (times as ISO strings)."""
    return {str(k): (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def _restored(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(snapshot)
    for name in _TIMES:
        if isinstance(out.get(name), str):
            out[name] = datetime.fromisoformat(out[name])
    return out


async def _keys(conn: AsyncConnection, table: Table, key_column: str, contact: str) -> list[str]:
    rows = await conn.execute(select(table.c[key_column]).where(table.c.contact_key == contact))
    return sorted(str(k) for k in rows.scalars())


async def _repoint(
    conn: AsyncConnection, table: Table, key_column: str, keys: list[str], src: str, dst: str
) -> None:
    for part in chunks(keys):
        await conn.execute(
            update(table)
            .where(table.c[key_column].in_(part), table.c.contact_key == src)
            .values(contact_key=dst)
        )


async def merge_contacts(connector: CrmConnector, request: MergeRequest) -> CrmMergeResult:
    """Move the other contact's rows to the kept one (see the module docstring)."""
    conn = _conn(request.conn)
    keep, other = request.keep_key, request.other_key
    moved = {str(t.name): await _keys(conn, t, k, other) for t, k in MOVED}
    verb = "would " if request.dry_run else ""
    counts = ", ".join(f"{len(keys)} {name.removeprefix('crm_')}" for name, keys in moved.items())
    lines = [f"sql: {verb}move {counts} to contact {keep}"]
    undo: dict[str, Any] = {"moved": moved, "contact": None, "renamed": False, "filled": []}
    other_row, keep_row = await _contact(conn, other), await _contact(conn, keep)
    if other_row is not None:
        undo["contact"] = _snapshot(other_row)
        if keep_row is None:
            undo["renamed"] = True
            lines.append(f"sql: {verb}rename contact {other} to {keep} (it had no row)")
        else:
            filled = [c for c in FILLABLE if keep_row[c] is None and other_row[c] is not None]
            undo["filled"] = filled
            lines.append(
                f"sql: {verb}fill {len(filled)} empty field(s) of {keep} and delete {other}"
            )
    if request.dry_run:
        return CrmMergeResult(tuple(lines), reversible=True)
    for table, key_column in MOVED:
        await _repoint(conn, table, key_column, moved[table.name], other, keep)
    if other_row is not None and keep_row is None:
        await conn.execute(
            update(crm_contacts).where(crm_contacts.c.contact_key == other).values(contact_key=keep)
        )
    elif other_row is not None:
        values = {c: other_row[c] for c in undo["filled"]}
        if values:
            await conn.execute(
                update(crm_contacts).where(crm_contacts.c.contact_key == keep).values(**values)
            )
        await conn.execute(delete(crm_contacts).where(crm_contacts.c.contact_key == other))
    lines.append("sql: `wa-bridge identity unmerge` puts these rows back")
    return CrmMergeResult(tuple(lines), reversible=True, undo=undo)


async def unmerge_contacts(connector: CrmConnector, request: UnmergeRequest) -> tuple[str, ...]:
    """Put back what the merge moved (rows the kept contact wrote since stay with it)."""
    conn = _conn(request.conn)
    keep, other = request.keep_key, request.other_key
    undo = request.undo
    moved: Mapping[str, list[str]] = undo.get("moved") or {}
    for table, key_column in MOVED:
        await _repoint(conn, table, key_column, list(moved.get(table.name) or []), keep, other)
    snapshot = undo.get("contact")
    if isinstance(snapshot, dict) and await _contact(conn, other) is None:
        if undo.get("renamed"):
            await conn.execute(
                update(crm_contacts)
                .where(crm_contacts.c.contact_key == keep)
                .values(contact_key=other)
            )
        else:
            await conn.execute(insert(crm_contacts).values(**_restored(snapshot)))
            await _unfill(conn, keep, snapshot, list(undo.get("filled") or []))
    total = sum(len(keys or []) for keys in moved.values())
    return (f"sql: {total} row(s) back on contact {other}, its contact row restored",)


async def _unfill(
    conn: AsyncConnection, keep: str, snapshot: Mapping[str, Any], filled: list[str]
) -> None:
    """Empty again the kept contact's columns the merge filled, unless changed since."""
    row = await _contact(conn, keep)
    if row is None:
        return
    cleared = {c: None for c in filled if c in FILLABLE and row.get(c) == snapshot.get(c)}
    if cleared:
        await conn.execute(
            update(crm_contacts).where(crm_contacts.c.contact_key == keep).values(**cleared)
        )


SQL_MERGER: Final = ContactMerger(merge=merge_contacts, unmerge=unmerge_contacts)
