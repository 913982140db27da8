"""The identity graph: every identifier (E.164 phone, BSUID, parent BSUID) → one contact.

Rules (DESIGN.md "Contact identity"):

- identifiers carried together are linked to one contact; a profile name never links;
- phones are global (business ``""``), BSUIDs and parent BSUIDs are scoped by business;
- a contact holds at most one current BSUID (and parent BSUID) per business, so a phone
  seen with a BSUID other than its contact's belongs to someone else now (a recycled
  number): the BSUID wins, the phone moves to the BSUID's contact, the old link is kept as
  history. Contacts are never merged.
- change notices move an identifier: the new one becomes current, the old one history.

Only current links match. Every decision is written to ``identity_events`` (no raw
identifiers: hashes only). A batch costs two SELECTs plus bulk writes; only moves, which are
rare, cost a statement each.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Table, and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.events import Contact
from wa_bridge.log import get_logger, hash_key
from wa_bridge.store._bulk import column_arrays, insert_arrays, is_postgres, members
from wa_bridge.store._chunks import chunks
from wa_bridge.store._upsert import insert_for
from wa_bridge.store.api import IdentityChange
from wa_bridge.store.tables import contacts, identities, identity_events

__all__ = ["IdentityGraph", "identifiers", "new_contact_id"]

IdKey = tuple[str, str, str]  # (business, kind, value)
STRONG_KINDS: Final = frozenset({"bsuid", "parent_bsuid"})
PHONE_SCOPE: Final = ""
_log = get_logger("store.identity")


def new_contact_id() -> str:
    return "c_" + uuid.uuid4().hex


def identifiers(business: str, contact: Contact) -> list[IdKey]:
    """The contact's identifiers, strongest first (BSUID, parent BSUID, phone)."""
    keys: list[IdKey] = []
    if contact.user_id:
        keys.append((business, "bsuid", contact.user_id))
    if contact.parent_user_id:
        keys.append((business, "parent_bsuid", contact.parent_user_id))
    if contact.phone_e164:
        keys.append((PHONE_SCOPE, "phone", contact.phone_e164))
    return keys


def _scope(business: str, kind: str) -> str:
    return PHONE_SCOPE if kind == "phone" else business


class IdentityGraph:
    """The part of the graph one batch touches, decided in memory, then written in bulk.

    Use: ``await graph.load(keys)``, then ``resolve`` / ``change`` per item in order, then
    ``await graph.flush()`` — all on one connection inside one transaction.
    """

    def __init__(self, conn: AsyncConnection, at: datetime) -> None:
        self._conn = conn
        self._at = at
        self._db_current: dict[IdKey, str] = {}
        self._current: dict[IdKey, str | None] = {}
        self._strong: dict[str, dict[tuple[str, str], str]] = {}
        self._touched: dict[tuple[IdKey, str], datetime] = {}
        self._new_contacts: list[str] = []
        self._audit: list[dict[str, Any]] = []

    async def load(self, keys: Iterable[IdKey]) -> None:
        """Read the current links of ``keys`` and the strong identifiers of their contacts."""
        wanted = set(keys)
        values = sorted({k[2] for k in wanted})
        t = identities.c
        found_contacts: set[str] = set()
        for clause in members(self._conn, t.value, values):
            rows = await self._conn.execute(
                select(t.business, t.kind, t.value, t.contact_id).where(clause, t.is_current)
            )
            for business, kind, value, contact_id in rows:
                key = (business, kind, value)
                if key in wanted:
                    self._db_current[key] = contact_id
                    found_contacts.add(contact_id)
        self._current.update(self._db_current)
        for clause in members(self._conn, t.contact_id, sorted(found_contacts)):
            rows = await self._conn.execute(
                select(t.business, t.kind, t.value, t.contact_id).where(
                    clause, t.is_current, t.kind.in_(sorted(STRONG_KINDS))
                )
            )
            for business, kind, value, contact_id in rows:
                self._strong.setdefault(contact_id, {})[(business, kind)] = value

    def resolve(self, business: str, contact: Contact) -> str | None:
        keys = identifiers(business, contact)
        if not keys:
            return None
        winner: str | None = None
        for key in keys:
            cid = self._current.get(key)
            if cid is not None and (key[1] == "bsuid" or self._compatible(cid, keys)):
                winner = cid
                break
        is_new = winner is None
        if winner is None:
            winner = self._create(keys)
        for key in keys:
            self._link(key, winner, announce=not is_new)
        return winner

    def change(self, change: IdentityChange) -> str:
        scope = _scope(change.business, change.kind)
        old_key: IdKey = (scope, change.kind, change.old)
        new_key: IdKey = (scope, change.kind, change.new)
        cid = self._current.get(old_key)
        if cid is None:
            # Already applied (a redelivered notice), or the old identifier is unknown.
            cid = self._current.get(new_key)
            if cid is None:
                cid = self._create([new_key])
                self._link(new_key, cid, announce=False)
            if old_key not in self._current:
                self._touched.setdefault((old_key, cid), self._at)
                self._current[old_key] = None
            return cid
        self._link(new_key, cid, announce=False)
        self._current[old_key] = None
        self._decide(cid, "changed", [new_key], f"old={hash_key(change.old)}")
        return cid

    async def flush(self) -> None:
        """Write the batch's decisions: contacts, demoted links, new links, audit rows."""
        conn, at = self._conn, self._at
        if self._new_contacts:
            await self._insert(
                contacts, [{"contact_id": c, "created_at": at} for c in self._new_contacts]
            )
        t = identities.c
        for key, db_cid in self._db_current.items():
            if self._current.get(key) != db_cid:
                await conn.execute(
                    update(identities)
                    .where(
                        and_(
                            t.business == key[0],
                            t.kind == key[1],
                            t.value == key[2],
                            t.contact_id == db_cid,
                        )
                    )
                    .values(is_current=False, replaced_at=at)
                )
        rows = [
            {
                "business": key[0],
                "kind": key[1],
                "value": key[2],
                "contact_id": cid,
                "is_current": self._current.get(key) == cid,
                "linked_at": linked_at,
                "replaced_at": None if self._current.get(key) == cid else at,
            }
            for (key, cid), linked_at in self._touched.items()
            if self._db_current.get(key) != cid
        ]
        if rows:
            await self._upsert_links(rows)
        if self._audit:
            await self._insert(identity_events, self._audit)

    async def _insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if is_postgres(self._conn):
            await insert_arrays(self._conn, table, column_arrays(rows))
        else:
            await self._conn.execute(insert(table), rows)

    async def _upsert_links(self, rows: list[dict[str, Any]]) -> None:
        # Both paths write the rows in list order (the order links were touched), as the
        # one-current-link index is checked row by row.
        conn = self._conn
        if is_postgres(conn):
            await insert_arrays(
                conn,
                identities,
                column_arrays(rows),
                "ON CONFLICT (business, kind, value, contact_id) DO UPDATE SET "
                "is_current = EXCLUDED.is_current, replaced_at = EXCLUDED.replaced_at",
            )
            return
        stmt = insert_for(conn, identities)
        stmt = stmt.on_conflict_do_update(
            index_elements=["business", "kind", "value", "contact_id"],
            set_={
                "is_current": stmt.excluded.is_current,
                "replaced_at": stmt.excluded.replaced_at,
            },
        )
        for part in chunks(rows, 2000):
            await conn.execute(stmt, list(part))

    # --- in-memory decisions ------------------------------------------------------------

    def _compatible(self, cid: str, keys: Sequence[IdKey]) -> bool:
        """False when ``cid`` already has another BSUID (or parent) in the same business."""
        strong = self._strong.get(cid, {})
        for business, kind, value in keys:
            if kind in STRONG_KINDS:
                existing = strong.get((business, kind))
                if existing is not None and existing != value:
                    return False
        return True

    def _create(self, keys: Sequence[IdKey]) -> str:
        cid = new_contact_id()
        self._new_contacts.append(cid)
        self._decide(cid, "created", keys, None)
        return cid

    def _link(self, key: IdKey, cid: str, *, announce: bool = True) -> None:
        old = self._current.get(key)
        if old == cid:
            return
        business, kind, value = key
        if old is None and announce:
            self._decide(cid, "linked", [key], f"id={hash_key(value)}")
        elif old is not None:
            old_strong = self._strong.get(old, {})
            if old_strong.get((business, kind)) == value:
                del old_strong[(business, kind)]
            self._decide(cid, "moved", [key], f"from={old} id={hash_key(value)}")
            _log.info("identity_moved", kind=kind, from_contact=old, to_contact=cid)
        self._current[key] = cid
        self._touched.setdefault((key, cid), self._at)
        if kind in STRONG_KINDS:
            self._strong.setdefault(cid, {})[(business, kind)] = value

    def _decide(self, cid: str, decision: str, keys: Sequence[IdKey], detail: str | None) -> None:
        self._audit.append(
            {
                "contact_id": cid,
                "decision": decision,
                "kinds": ",".join(k[1] for k in keys),
                "detail": detail,
                "at": self._at,
            }
        )


def all_keys(items: Sequence[tuple[str, Contact]]) -> list[IdKey]:
    return [key for business, contact in items for key in identifiers(business, contact)]


def change_keys(changes: Sequence[IdentityChange]) -> list[IdKey]:
    out: list[IdKey] = []
    for ch in changes:
        scope = _scope(ch.business, ch.kind)
        out += [(scope, ch.kind, ch.old), (scope, ch.kind, ch.new)]
    return out
