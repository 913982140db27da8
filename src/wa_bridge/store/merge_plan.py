"""What merging two contacts moves in our maps: :func:`plan_merge` reads it (see
:mod:`wa_bridge.store.identity_merges` for the rules and the writing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.errors import MergeRefused
from wa_bridge.store._bulk import members
from wa_bridge.store.book import KnownRecord
from wa_bridge.store.crm_records import _known as known_record
from wa_bridge.store.identity_map import STRONG_KINDS
from wa_bridge.store.tables import (
    cases,
    consents,
    contacts,
    crm_records,
    identities,
    identity_merges,
)

__all__ = ["HISTORY_STEP", "CaseMove", "IdKey", "LinkMove", "MergePlan", "plan_merge"]

IdKey = tuple[str, str, str]  # (business, kind, value)
# A copied history link is let go just after OTHER's, so KEEP is its last holder.
HISTORY_STEP: Final = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class LinkMove:
    """One identifier link given to KEEP: a current one (``current``) or a retired one
    whose last holder was OTHER. ``keep_row``: KEEP already had a (history) row for it,
    let go at ``keep_replaced_at``; ``other_replaced_at``: when OTHER let a retired one go.
    ``shadowed``: a current BSUID (or parent) of a business where KEEP holds its own: KEEP
    takes it as history (a contact holds one per business), so its events still reach KEEP.
    """

    business: str
    kind: str
    value: str
    current: bool
    keep_row: bool = False
    keep_replaced_at: datetime | None = None
    other_replaced_at: datetime | None = None
    shadowed: bool = False

    @property
    def key(self) -> IdKey:
        return (self.business, self.kind, self.value)

    @property
    def keep_current(self) -> bool:
        """KEEP holds it as a current link after the merge."""
        return self.current and not self.shadowed


@dataclass(frozen=True, slots=True)
class CaseMove:
    """One of OTHER's cases, given to KEEP; ``closed``: it was open while KEEP had an open
    case on the same business number, so the merge closes it in our map."""

    case_key: str
    business_number: str
    closed: bool = False


@dataclass(frozen=True, slots=True)
class MergePlan:
    """What merging ``other_id`` into ``keep_id`` moves (read by :func:`plan_merge`).

    ``keep_record`` / ``other_record``: their contact records in the CRM instance's book,
    as (kind, record), when it knows them.
    """

    keep_id: str
    other_id: str
    links: tuple[LinkMove, ...]
    cases: tuple[CaseMove, ...]
    consents: tuple[int, ...]
    keep_record: tuple[str, KnownRecord] | None = None
    other_record: tuple[str, KnownRecord] | None = None

    def lines(self) -> list[str]:
        """What moves, for the operator: counts and kinds, no identifier values."""
        current = [m.kind for m in self.links if m.keep_current]
        shadowed = [m.kind for m in self.links if m.shadowed]
        retired = [m.kind for m in self.links if not m.current]
        closed = sum(1 for c in self.cases if c.closed)
        out = [
            f"identifiers: {len(current)} move to {self.keep_id} ({_kinds(current)})"
            + (
                f", {len(shadowed)} kept as history (it holds its own {_kinds(shadowed)})"
                if shadowed
                else ""
            )
            + (f", {len(retired)} retired ones follow ({_kinds(retired)})" if retired else ""),
            f"cases: {len(self.cases)} move"
            + (f", {closed} of them closed (the kept contact has an open case)" if closed else ""),
            f"consent records: {len(self.consents)} move",
        ]
        return out


def _kinds(kinds: Sequence[str]) -> str:
    return ", ".join(sorted(set(kinds))) or "none"


async def plan_merge(conn: AsyncConnection, keep_id: str, other_id: str, crm: str) -> MergePlan:
    """What merging ``other_id`` into ``keep_id`` moves, with the book of CRM instance
    ``crm``. Raises MergeRefused (nothing read changes anything) for the same contact
    twice, an unknown contact, or a contact already merged."""
    if keep_id == other_id:
        raise MergeRefused("KEEP and OTHER are the same contact: nothing to merge")
    known = set(
        (
            await conn.execute(
                select(contacts.c.contact_id).where(contacts.c.contact_id.in_([keep_id, other_id]))
            )
        ).scalars()
    )
    for cid in (keep_id, other_id):
        if cid not in known:
            raise MergeRefused(f"no contact {cid} (see `wa-bridge identity report`)")
    merged = await conn.execute(
        select(identity_merges.c.id, identity_merges.c.keep_id, identity_merges.c.other_id).where(
            identity_merges.c.status == "merged",
            identity_merges.c.other_id.in_([keep_id, other_id]),
        )
    )
    for merge_id, into, was in merged:
        if was == other_id:
            raise MergeRefused(
                f"{other_id} is already merged into {into} (merge {merge_id}); "
                f"`wa-bridge identity unmerge {merge_id}` first"
            )
        raise MergeRefused(f"{keep_id} was merged into {into} (merge {merge_id}): keep {into}")
    return MergePlan(
        keep_id,
        other_id,
        tuple(await _links(conn, keep_id, other_id)),
        tuple(await _cases(conn, keep_id, other_id)),
        tuple(
            int(i)
            for i in (
                await conn.execute(select(consents.c.id).where(consents.c.contact_id == other_id))
            ).scalars()
        ),
        *await _records(conn, crm, keep_id, other_id),
    )


async def _links(conn: AsyncConnection, keep_id: str, other_id: str) -> list[LinkMove]:
    t = identities.c
    rows = (
        await conn.execute(
            select(t.business, t.kind, t.value, t.is_current, t.replaced_at).where(
                t.contact_id == other_id
            )
        )
    ).all()
    current = {(b, k, v) for b, k, v, is_current, _ in rows if is_current}
    retired = {(b, k, v): at for b, k, v, is_current, at in rows if not is_current}
    values = sorted({key[2] for key in current | set(retired)})
    holders: dict[IdKey, list[tuple[str, bool, datetime | None]]] = {}
    for clause in members(conn, t.value, values):
        found = await conn.execute(
            select(t.business, t.kind, t.value, t.contact_id, t.is_current, t.replaced_at).where(
                clause
            )
        )
        for b, k, v, cid, is_current, at in found:
            holders.setdefault((b, k, v), []).append((cid, bool(is_current), at))
    keep_slots = {
        (b, k)
        for b, k in await conn.execute(
            select(t.business, t.kind).where(
                t.contact_id == keep_id, t.is_current, t.kind.in_(sorted(STRONG_KINDS))
            )
        )
    }
    out: list[LinkMove] = []
    for key in sorted(current | set(retired)):
        rows_of_key = holders.get(key, [])
        keep_row = next((r for r in rows_of_key if r[0] == keep_id), None)
        if key not in current and not _last_holder_is(rows_of_key, other_id):
            continue  # someone holds it now, or let it go after OTHER did
        out.append(
            LinkMove(
                *key,
                current=key in current,
                keep_row=keep_row is not None,
                keep_replaced_at=keep_row[2] if keep_row else None,
                other_replaced_at=retired.get(key),
                shadowed=key in current and key[:2] in keep_slots,
            )
        )
    return out


def _last_holder_is(rows: Sequence[tuple[str, bool, datetime | None]], contact_id: str) -> bool:
    """Nobody holds the identifier now and ``contact_id`` let it go last."""
    if any(is_current for _, is_current, _ in rows):
        return False
    dated = [(at, cid) for cid, _, at in rows if at is not None]
    return bool(dated) and max(dated)[1] == contact_id


async def _cases(conn: AsyncConnection, keep_id: str, other_id: str) -> list[CaseMove]:
    c = cases.c
    keep_open = set(
        (
            await conn.execute(
                select(c.business_number).where(c.contact_id == keep_id, c.status == "open")
            )
        ).scalars()
    )
    rows = await conn.execute(
        select(c.case_key, c.business_number, c.status)
        .where(c.contact_id == other_id)
        .order_by(c.opened_at, c.case_key)
    )
    return [
        CaseMove(str(key), str(number), closed=status == "open" and number in keep_open)
        for key, number, status in rows
    ]


async def _records(
    conn: AsyncConnection, crm: str, keep_id: str, other_id: str
) -> tuple[tuple[str, KnownRecord] | None, tuple[str, KnownRecord] | None]:
    t = crm_records.c
    rows = await conn.execute(
        select(t.kind, t.key, t.crm_id, t.match, t.filled, t.written).where(
            t.crm == crm, t.key.in_([keep_id, other_id])
        )
    )
    found: dict[str, tuple[str, KnownRecord]] = {}
    for row in rows:
        found.setdefault(str(row.key), (str(row.kind), known_record(row)))
    return found.get(keep_id), found.get(other_id)
