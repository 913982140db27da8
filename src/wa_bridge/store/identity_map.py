"""The identity graph: every identifier (E.164 phone, BSUID, parent BSUID) → one contact.

Rules (DESIGN.md "Contact identity"; README "Identity"):

- identifiers carried together are linked to one contact; a profile name never links;
- phones are global (business ``""``), BSUIDs and parent BSUIDs are scoped by business;
- a contact holds at most one current BSUID (and parent BSUID) per business, so a phone
  seen with a BSUID other than its contact's belongs to someone else now (a recycled
  number): the BSUID wins, the phone moves to the BSUID's contact, the old link is kept as
  history. Contacts are never merged.
- a change notice (:class:`~wa_bridge.store.api.IdentityChange`) finds the person by its
  previous identifiers, links the current ones to them (taken from whoever holds them: a
  contact opened by a message that beat the notice keeps only that message) and makes the
  previous ones history. A notice about someone never seen opens one contact under the
  current identifiers, the previous ones as its history; a notice already applied, or
  older than what it would undo, changes nothing.
- an identifier nobody holds now (retired by a notice) still reaches its last holder: a
  BSUID always (they are never reissued), a phone only on an event that carries no BSUID
  (a late status for a message sent to the old number), since a phone is reissued to
  strangers, whose events carry their own BSUID. It stays history.

Current links match first, then that fallback. Every decision is written to
``identity_events`` (no raw identifiers: hashes only). A batch costs two SELECTs plus bulk
writes; only moves, which are rare, cost a statement each.

A new contact's id is decided from state a rolled-back batch leaves as it was (see
:func:`contact_id_for`): the CRM may have been written under it before the batch failed,
and the retried batch must write under the same id, not a second person.
"""

from __future__ import annotations

import hashlib
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
from wa_bridge.store.api import Identifier, IdentityChange
from wa_bridge.store.tables import contacts, identities, identity_events

__all__ = ["STRONG_KINDS", "IdentityGraph", "contact_id_for", "identifiers"]

IdKey = tuple[str, str, str]  # (business, kind, value)
STRONG_KINDS: Final = frozenset({"bsuid", "parent_bsuid"})
PHONE_SCOPE: Final = ""
_log = get_logger("store.identity")


def contact_id_for(seed: IdKey, generation: int) -> str:
    """The id of the contact opened under ``seed`` (its strongest identifier at creation)
    when ``generation`` contacts were ever linked to that identifier before.

    Deterministic: a batch retried after a rollback (the CRM may already hold a record
    under the id) mints the same id, while a seed that already names someone (a reissued
    identifier) gets a new one. ``c_`` + 32 hex digits of SHA-256.
    """
    business, kind, value = seed
    digest = hashlib.sha256(f"{business}|{kind}|{value}|{generation}".encode())
    return "c_" + digest.hexdigest()[:32]


# What resolving a contact depends on: the fields ``identifiers`` reads, and the business.
IdentityOf = tuple[str, str | None, str | None, str | None, tuple[str, ...]]


def identity_of(business: str, contact: Contact) -> IdentityOf:
    """An item's identity as a plain tuple: hashed and compared in C, where a Contact's own
    hash and equality are Python code over all its fields (names too), once per event."""
    return (
        business,
        contact.user_id,
        contact.parent_user_id,
        contact.phone_e164,
        contact.linked_phones,
    )


def identifiers(business: str, contact: Contact) -> list[IdKey]:
    """The contact's identifiers, strongest first (BSUID, parent BSUID, phone)."""
    keys: list[IdKey] = []
    if contact.user_id:
        keys.append((business, "bsuid", contact.user_id))
    if contact.parent_user_id:
        keys.append((business, "parent_bsuid", contact.parent_user_id))
    for phone in (contact.phone_e164, *contact.linked_phones):
        if phone and (PHONE_SCOPE, "phone", phone) not in keys:
            keys.append((PHONE_SCOPE, "phone", phone))
    return keys


def _keys(business: str, ids: Sequence[Identifier]) -> list[IdKey]:
    """Notice identifiers as graph keys, strongest first."""
    order = {"bsuid": 0, "parent_bsuid": 1, "phone": 2}
    ranked = sorted(ids, key=lambda i: order[i[0]])
    return list(dict.fromkeys((_scope(business, kind), kind, value) for kind, value in ranked))


def _old(keys: Sequence[IdKey]) -> str:
    """The audit detail of identifiers let go: their hashes, never the values."""
    return "old=" + ",".join(hash_key(k[2]) for k in keys)


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
        self._last_holder: dict[IdKey, str] = {}  # for keys nobody holds now
        self._retired_at: dict[IdKey, datetime] = {}  # when they were let go
        self._strong: dict[str, dict[tuple[str, str], str]] = {}
        self._touched: dict[tuple[IdKey, str], datetime] = {}
        self._new_contacts: list[str] = []
        self._ever: dict[IdKey, set[str]] = {}  # contacts ever linked, current or history
        self._audit: list[dict[str, Any]] = []
        self._version = 0  # bumped by every change of a link (resolve_all's memo)

    async def load(self, keys: Iterable[IdKey]) -> None:
        """Read the links of ``keys`` (current, and the last holder of those nobody holds)
        and the current strong identifiers of every contact found."""
        wanted = set(keys)
        values = sorted({k[2] for k in wanted})
        t = identities.c
        history: dict[IdKey, tuple[datetime, str]] = {}
        for clause in members(self._conn, t.value, values):
            rows = await self._conn.execute(
                select(
                    t.business, t.kind, t.value, t.contact_id, t.is_current, t.replaced_at
                ).where(clause)
            )
            for business, kind, value, contact_id, is_current, replaced_at in rows:
                key = (business, kind, value)
                if key not in wanted:
                    continue
                self._ever.setdefault(key, set()).add(contact_id)
                if is_current:
                    self._db_current[key] = contact_id
                else:
                    when = replaced_at or self._at
                    if key not in history or history[key][0] < when:
                        history[key] = (when, contact_id)
        self._current.update(self._db_current)
        for key, (when, cid) in history.items():
            if key not in self._db_current:
                self._last_holder[key] = cid
                self._retired_at[key] = when
        found = set(self._db_current.values()) | set(self._last_holder.values())
        for clause in members(self._conn, t.contact_id, sorted(found)):
            strong_rows = await self._conn.execute(
                select(t.business, t.kind, t.value, t.contact_id).where(
                    clause, t.is_current, t.kind.in_(sorted(STRONG_KINDS))
                )
            )
            for business, kind, value, contact_id in strong_rows:
                self._strong.setdefault(contact_id, {})[(business, kind)] = value
                key = (business, kind, value)  # known now: a notice may retire it
                self._db_current.setdefault(key, contact_id)
                self._current.setdefault(key, contact_id)

    def resolve_all(self, items: Sequence[tuple[str, Contact]]) -> list[str | None]:
        """``resolve`` each item, in order. An item with the identifiers of an earlier one,
        with no link changed since that one, names the same contact and changes nothing:
        it is answered from memory (a batch holds many events of few contacts)."""
        memo: dict[IdentityOf, tuple[int, str | None]] = {}
        out: list[str | None] = []
        for business, contact in items:
            identity = identity_of(business, contact)
            known = memo.get(identity)
            if known is not None and known[0] == self._version:
                out.append(known[1])
                continue
            cid = self.resolve(business, contact)
            memo[identity] = (self._version, cid)
            out.append(cid)
        return out

    def resolve(self, business: str, contact: Contact) -> str | None:
        keys = identifiers(business, contact)
        if not keys:
            return None
        winner = self._holder(keys)
        is_new = winner is None
        if winner is None:
            winner = self._create(keys)
        current = self._current
        for key in keys:
            if current.get(key) == winner:
                continue  # linked already (most events of a known contact): nothing changes
            if not self._is_retired_from(key, winner):  # a retired identifier stays history
                self._link(key, winner, announce=not is_new)
        return winner

    def change(self, change: IdentityChange) -> str | None:
        """Apply one notice (see the module rules); return the person's contact id."""
        previous = _keys(change.business, change.previous)
        current = _keys(change.business, change.current)
        cid = self._holder(previous, notice=True) or self._holder(current, notice=True)
        if cid is None and not current:
            return None
        retired: list[IdKey] = []
        if cid is None:  # someone never seen: one contact, as the notice leaves them
            cid = self._create(current)
        elif self._is_applied(cid, previous, current, change.at):
            current = []
        else:
            candidates = self._to_retire(cid, change, previous, current)
            retired = [k for k in candidates if self._retire(k, cid, change.at)]
        joined = [k for k in current if self._current.get(k) != cid]
        for key in joined:
            self._link(key, cid, announce=False)
        unseen = [k for k in previous if k not in self._current and k not in self._last_holder]
        for key in unseen:  # so a late event from the old identity still finds them
            self._keep_as_history(key, cid, change.at)
        if retired or unseen or joined:
            detail = _old(retired + unseen) if retired or unseen else None
            self._decide(cid, "changed", joined, detail)
        return cid

    def _to_retire(
        self,
        cid: str,
        change: IdentityChange,
        previous: Sequence[IdKey],
        current: Sequence[IdKey],
    ) -> list[IdKey]:
        """The previous identifiers, and ``cid``'s BSUIDs the notice replaces or renews."""
        out = [k for k in previous if k not in current]
        for (business, kind), value in self._strong.get(cid, {}).items():
            key = (business, kind, value)
            replaced = any(k[:2] == key[:2] for k in current)
            renewed = change.renews_bsuids and business == change.business
            if key not in current and key not in out and (replaced or renewed):
                out.append(key)
        return out

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
                    .values(is_current=False, replaced_at=self._retired_at.get(key, at))
                )
        rows = [
            {
                "business": key[0],
                "kind": key[1],
                "value": key[2],
                "contact_id": cid,
                "is_current": self._current.get(key) == cid,
                "linked_at": linked_at,
                "replaced_at": None
                if self._current.get(key) == cid
                else self._retired_at.get(key, at),
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

    def _holder(self, keys: Sequence[IdKey], *, notice: bool = False) -> str | None:
        """The contact ``keys`` name: a current link (strongest first; a phone or parent
        only if its contact's BSUIDs agree with ``keys``), else the last holder of a retired
        identifier (a phone only for a notice or an event without BSUIDs)."""
        for key in keys:
            cid = self._current.get(key)
            if cid is not None and (key[1] == "bsuid" or self._compatible(cid, keys)):
                return cid
        phone_ok = notice or not any(k[1] in STRONG_KINDS for k in keys)
        for key in keys:
            cid = self._last_holder.get(key) if self._current.get(key) is None else None
            if cid is None or (key[1] == "phone" and not phone_ok):
                continue
            if key[1] == "bsuid" or self._compatible(cid, keys):
                return cid
        return None

    def _is_retired_from(self, key: IdKey, cid: str) -> bool:
        return self._current.get(key) is None and self._last_holder.get(key) == cid

    def _is_applied(
        self, cid: str, previous: Sequence[IdKey], current: Sequence[IdKey], at: datetime
    ) -> bool:
        """A notice already applied (all its current ids are ``cid``'s, none of the previous
        ones), or older than ``cid``'s state (a current id of it let go at or after ``at``;
        one let go earlier may come back: a person who returns to their old number)."""
        for key in current:
            if self._is_retired_from(key, cid) and self._retired_at.get(key, at) >= at:
                return True
        done = all(self._current.get(k) == cid for k in current)
        return done and not any(self._current.get(k) == cid for k in previous if k not in current)

    def _retire(self, key: IdKey, cid: str, at: datetime) -> bool:
        """Make ``cid``'s current link of ``key`` history as of ``at``; False if it held none."""
        if self._current.get(key) != cid:
            return False
        business, kind, value = key
        strong = self._strong.get(cid, {})
        if strong.get((business, kind)) == value:
            del strong[(business, kind)]
        self._keep_as_history(key, cid, at)  # (a change: bumps the version)
        return True

    def _keep_as_history(self, key: IdKey, cid: str, at: datetime) -> None:
        """Make ``key`` ``cid``'s history (not current), let go at ``at``."""
        self._version += 1
        self._current[key] = None
        self._last_holder[key] = cid
        self._retired_at[key] = at
        self._touched.setdefault((key, cid), self._at)
        self._ever.setdefault(key, set()).add(cid)

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
        seed = keys[0]  # strongest first (identifiers, _keys)
        ever = self._ever.setdefault(seed, set())
        cid = contact_id_for(seed, len(ever))
        ever.add(cid)  # a second contact on this seed in the same batch is another one
        self._version += 1
        self._new_contacts.append(cid)
        self._decide(cid, "created", keys, None)
        return cid

    def _link(self, key: IdKey, cid: str, *, announce: bool = True) -> None:
        old = self._current.get(key)
        if old == cid:
            return
        self._version += 1
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
        self._ever.setdefault(key, set()).add(cid)
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
    """The identifiers of ``items``, read once per distinct identity (not per event)."""
    distinct = {identity_of(business, contact): (business, contact) for business, contact in items}
    return [key for item in distinct.values() for key in identifiers(*item)]


def change_keys(changes: Sequence[IdentityChange]) -> list[IdKey]:
    out: list[IdKey] = []
    for ch in changes:
        out += _keys(ch.business, ch.previous) + _keys(ch.business, ch.current)
    return out
