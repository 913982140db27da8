"""Undoing a merge in our maps (``wa-bridge identity unmerge MERGE_ID``).

From the merge's ``undo`` record: the identifier links KEEP took are given back to OTHER
(those KEEP still holds: one moved on since, by a change notice, stays where it is), the
retired ones' last holder is OTHER again, the cases go back (a case the merge closed is
opened again when it is still as the merge left it), and so do the consent records.
What KEEP gained after the merge (new cases, new identifiers) stays with KEEP. The record
book is not touched: OTHER's CRM record was merged away, so OTHER's next write finds its
record by our key (Salesforce, the SQL CRM) or creates one.

Case keys count the cases a contact had on a business number, so giving cases back could
make KEEP mint a key it already used (it opened several cases since the merge): that
unmerge is refused (MergeRefused), never half done.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.errors import MergeRefused
from wa_bridge.store.cases import case_key_for
from wa_bridge.store.identity_merges import link_where
from wa_bridge.store.merge_plan import CaseMove, LinkMove
from wa_bridge.store.merges import MergeRow, get_merge
from wa_bridge.store.tables import cases, consents, identities, identity_events, identity_merges

__all__ = ["UnmergePlan", "apply_unmerge", "plan_unmerge"]

_SAME_TIME: Final = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class UnmergePlan:
    """What undoing ``merge`` gives back (``links``, ``cases``: those still as the merge
    left them; ``reopen``: cases the merge closed that open again), and what stays
    (``kept_links``, ``kept_cases``: moved on since)."""

    merge: MergeRow
    links: tuple[LinkMove, ...]
    cases: tuple[CaseMove, ...]
    reopen: tuple[str, ...]
    consents: tuple[int, ...]
    kept_links: int
    kept_cases: int

    def lines(self) -> list[str]:
        m = self.merge
        out = [
            f"identifiers: {sum(1 for x in self.links if x.current)} back to {m.other_id}",
            f"cases: {len(self.cases)} back ({len(self.reopen)} opened again)",
            f"consent records: {len(self.consents)} back",
        ]
        if self.kept_links or self.kept_cases:
            out.append(
                f"stay with {m.keep_id}: {self.kept_links} identifier(s) and "
                f"{self.kept_cases} case(s) that moved on since the merge"
            )
        return out


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _links(undo: Mapping[str, Any]) -> list[LinkMove]:
    return [
        LinkMove(
            business=str(x["business"]),
            kind=str(x["kind"]),
            value=str(x["value"]),
            current=bool(x["current"]),
            keep_row=bool(x.get("keep_row")),
            keep_replaced_at=_time(x.get("keep_replaced_at")),
            other_replaced_at=_time(x.get("other_replaced_at")),
            shadowed=bool(x.get("shadowed")),
        )
        for x in undo.get("links") or []
    ]


async def plan_unmerge(conn: AsyncConnection, merge_id: int) -> UnmergePlan:
    """What undoing merge ``merge_id`` gives back. Raises MergeRefused for an unknown or
    undone merge, or one whose undo would reuse a case key."""
    merge = await get_merge(conn, merge_id)
    if merge is None:
        raise MergeRefused(f"no merge {merge_id} (see `wa-bridge identity merges`)")
    if merge.status != "merged":
        raise MergeRefused(f"merge {merge_id} was undone already ({merge.unmerged_by})")
    keep = merge.keep_id
    links = _links(merge.undo)
    t = identities.c
    still: list[LinkMove] = []
    for move in links:
        row = (await conn.execute(select(t.is_current).where(link_where(move.key, keep)))).first()
        if row is not None and bool(row[0]) == move.keep_current:
            still.append(move)
    moved = [
        CaseMove(str(x["case_key"]), str(x["business_number"]), bool(x.get("closed")))
        for x in merge.undo.get("cases") or []
    ]
    states = await _case_states(conn, [m.case_key for m in moved])
    back = [m for m in moved if states.get(m.case_key, ("", "", None))[0] == keep]
    merged_at = _time(merge.undo.get("at")) or merge.merged_at
    reopen = [
        m.case_key
        for m in back
        if m.closed
        and states[m.case_key][1] == "resolved"
        and _same(states[m.case_key][2], merged_at)
    ]
    await _check_case_keys(conn, merge, back)
    consent_ids = [int(i) for i in merge.undo.get("consents") or []]
    return UnmergePlan(
        merge,
        tuple(still),
        tuple(back),
        tuple(reopen),
        tuple(consent_ids),
        kept_links=sum(1 for m in links if m.current and m not in still),
        kept_cases=len(moved) - len(back),
    )


def _same(a: datetime | None, b: datetime) -> bool:
    return a is not None and abs(a - b) < _SAME_TIME


async def _case_states(
    conn: AsyncConnection, keys: Sequence[str]
) -> dict[str, tuple[str, str, datetime | None]]:
    c = cases.c
    out: dict[str, tuple[str, str, datetime | None]] = {}
    for i in range(0, len(keys), 500):
        rows = await conn.execute(
            select(c.case_key, c.contact_id, c.status, c.closed_at).where(
                c.case_key.in_(list(keys[i : i + 500]))
            )
        )
        out.update({str(k): (str(cid), str(s), at) for k, cid, s, at in rows})
    return out


async def _check_case_keys(
    conn: AsyncConnection, merge: MergeRow, back: Sequence[CaseMove]
) -> None:
    """Refuse when, after giving ``back`` the cases, KEEP or OTHER would mint a case key
    that exists (keys count a contact's cases per number)."""
    c = cases.c
    numbers = sorted({m.business_number for m in back})
    if not numbers:
        return
    counts: dict[tuple[str, str], int] = {}
    rows = await conn.execute(
        select(c.contact_id, c.business_number, func.count())
        .where(c.contact_id.in_([merge.keep_id, merge.other_id]), c.business_number.in_(numbers))
        .group_by(c.contact_id, c.business_number)
    )
    for cid, number, n in rows:
        counts[(str(cid), str(number))] = int(n)
    wanted: dict[str, tuple[str, str]] = {}
    for number in numbers:
        moving = sum(1 for m in back if m.business_number == number)
        after = {
            merge.keep_id: counts.get((merge.keep_id, number), 0) - moving,
            merge.other_id: counts.get((merge.other_id, number), 0) + moving,
        }
        for cid, n in after.items():
            wanted[case_key_for(cid, number, n)] = (cid, number)
    taken = (await conn.execute(select(c.case_key).where(c.case_key.in_(sorted(wanted))))).scalars()
    for key in taken:
        cid, number = wanted[str(key)]
        raise MergeRefused(
            f"merge {merge.id} cannot be undone: {merge.keep_id} opened cases on business "
            f"number {number} since the merge, and giving the cases back would make "
            f"{cid} reuse case key {key}. Nothing was changed."
        )


async def apply_unmerge(
    conn: AsyncConnection, plan: UnmergePlan, *, actor: str, at: datetime
) -> None:
    """Write ``plan`` (see the module docstring) and mark the merge undone."""
    merge = plan.merge
    keep, other = merge.keep_id, merge.other_id
    for move in plan.links:
        await _take_link(conn, move, keep, other)
    c = cases.c
    for case_move in plan.cases:
        values: dict[str, Any] = {"contact_id": other}
        if case_move.case_key in plan.reopen:
            values.update(status="open", closed_at=None)
        await conn.execute(
            update(cases)
            .where(c.case_key == case_move.case_key, c.contact_id == keep)
            .values(**values)
        )
    for i in range(0, len(plan.consents), 500):
        await conn.execute(
            update(consents)
            .where(
                consents.c.id.in_(list(plan.consents[i : i + 500])), consents.c.contact_id == keep
            )
            .values(contact_id=other)
        )
    kinds = ",".join(sorted({m.kind for m in plan.links if m.current}))
    await conn.execute(
        insert(identity_events),
        [
            {
                "contact_id": cid,
                "decision": "unmerged",
                "kinds": kinds,
                "detail": f"merge={merge.id} keep={keep} other={other}",
                "at": at,
            }
            for cid in (keep, other)
        ],
    )
    await conn.execute(
        update(identity_merges)
        .where(identity_merges.c.id == merge.id)
        .values(status="unmerged", unmerged_by=actor, unmerged_at=at)
    )


async def _take_link(conn: AsyncConnection, move: LinkMove, keep: str, other: str) -> None:
    key = move.key
    if move.keep_row:  # KEEP's own old row: back to what it was
        await conn.execute(
            update(identities)
            .where(link_where(key, keep))
            .values(is_current=False, replaced_at=move.keep_replaced_at)
        )
    else:
        await conn.execute(delete(identities).where(link_where(key, keep)))
    if move.current:
        await conn.execute(
            update(identities)
            .where(link_where(key, other))
            .values(is_current=True, replaced_at=None)
        )
