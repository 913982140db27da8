"""Merging two contacts in our maps (``wa-bridge identity merge KEEP OTHER``).

What moves from OTHER to KEEP, so that every later event of either identity lands on KEEP:

- identity links: each identifier OTHER holds now becomes KEEP's (OTHER keeps it as
  history); an identifier nobody holds now whose last holder was OTHER gets KEEP as its
  last holder (a late status for a retired number reaches KEEP);
- cases: OTHER's cases become KEEP's; where both had an open case on one business number,
  KEEP's stays open and OTHER's is closed in our map (its CRM record is left as it is);
- the consent ledger (``consents``): OTHER's opt-in / opt-out evidence;
- the record book (``crm_records``): OTHER's contact record is forgotten for the CRM
  merged in (its CRM record is merged away: a key the CRM no longer holds); KEEP's takes
  the CRM's new id, if the merge gave one, and the fields the merge filled.

Nothing else names a contact id: the ledger, message statuses and dead letters are keyed
by event, message or the identifier as received, and go through the graph again.

Each merge is one ``identity_merges`` row whose ``undo`` holds what
:mod:`wa_bridge.store.identity_unmerge` needs to give it all back, plus two
``identity_events`` rows (``merged`` on KEEP, ``merged_into`` on OTHER; ids only). All
of it runs on the caller's connection, in its transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store.tables import (
    cases,
    consents,
    crm_records,
    identities,
    identity_events,
    identity_merges,
)

__all__ = ["CrmOutcome", "apply_merge", "link_where"]

from wa_bridge.store.merge_plan import HISTORY_STEP, IdKey, LinkMove, MergePlan


@dataclass(frozen=True, slots=True)
class CrmOutcome:
    """What the CRM's merge said, as :func:`apply_merge` records it."""

    crm: str  # the CRM instance
    lines: tuple[str, ...]
    reversible: bool
    undo: Mapping[str, Any]
    keep_crm_id: str | None = None
    fields_merged: bool = False


async def apply_merge(
    conn: AsyncConnection, plan: MergePlan, crm: CrmOutcome, *, actor: str, at: datetime
) -> int:
    """Write ``plan`` (see the module docstring) and its ``identity_merges`` row; return
    the merge's id."""
    merge_id = await _insert_merge(conn, plan, crm, actor=actor, at=at)
    for move in plan.links:
        await _give_link(conn, move, plan, at)
    await _give_cases(conn, plan, at)
    for part in _parts(plan.consents):
        await conn.execute(
            update(consents)
            .where(consents.c.id.in_(part), consents.c.contact_id == plan.other_id)
            .values(contact_id=plan.keep_id)
        )
    await _rebook(conn, plan, crm, at)
    kinds = ",".join(sorted({m.kind for m in plan.links if m.keep_current}))
    await conn.execute(
        insert(identity_events),
        [
            {
                "contact_id": plan.keep_id,
                "decision": "merged",
                "kinds": kinds,
                "detail": f"from={plan.other_id} merge={merge_id}",
                "at": at,
            },
            {
                "contact_id": plan.other_id,
                "decision": "merged_into",
                "kinds": kinds,
                "detail": f"into={plan.keep_id} merge={merge_id}",
                "at": at,
            },
        ],
    )
    return merge_id


def _parts(ids: Sequence[int]) -> list[list[int]]:
    return [list(ids[i : i + 500]) for i in range(0, len(ids), 500)]


async def _insert_merge(
    conn: AsyncConnection, plan: MergePlan, crm: CrmOutcome, *, actor: str, at: datetime
) -> int:
    undo = {
        "at": at.isoformat(),
        "links": [
            {
                "business": m.business,
                "kind": m.kind,
                "value": m.value,
                "current": m.current,
                "keep_row": m.keep_row,
                "keep_replaced_at": _iso(m.keep_replaced_at),
                "other_replaced_at": _iso(m.other_replaced_at),
                "shadowed": m.shadowed,
            }
            for m in plan.links
        ],
        "cases": [
            {"case_key": c.case_key, "business_number": c.business_number, "closed": c.closed}
            for c in plan.cases
        ],
        "consents": list(plan.consents),
        "crm": dict(crm.undo),
    }
    result = await conn.execute(
        insert(identity_merges).values(
            keep_id=plan.keep_id,
            other_id=plan.other_id,
            status="merged",
            crm=crm.crm,
            crm_result="\n".join(crm.lines),
            crm_reversible=crm.reversible,
            undo=undo,
            actor=actor,
            merged_at=at,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def link_where(key: IdKey, contact_id: str) -> Any:
    """The ``identities`` row of ``key`` linked to ``contact_id``."""
    t = identities.c
    return and_(
        t.business == key[0], t.kind == key[1], t.value == key[2], t.contact_id == contact_id
    )


async def _give_link(conn: AsyncConnection, move: LinkMove, plan: MergePlan, at: datetime) -> None:
    key = move.key
    if move.current:  # OTHER's row first: one current link per identifier
        await conn.execute(
            update(identities)
            .where(link_where(key, plan.other_id), identities.c.is_current)
            .values(is_current=False, replaced_at=at)
        )
        current = move.keep_current
        replaced = None if current else at + HISTORY_STEP
    else:
        current, replaced = False, (move.other_replaced_at or at) + HISTORY_STEP
    if move.keep_row:
        await conn.execute(
            update(identities)
            .where(link_where(key, plan.keep_id))
            .values(is_current=current, replaced_at=replaced)
        )
        return
    await conn.execute(
        insert(identities).values(
            business=key[0],
            kind=key[1],
            value=key[2],
            contact_id=plan.keep_id,
            is_current=current,
            linked_at=at,
            replaced_at=replaced,
        )
    )


async def _give_cases(conn: AsyncConnection, plan: MergePlan, at: datetime) -> None:
    c = cases.c
    closed = [m.case_key for m in plan.cases if m.closed]
    others = [m.case_key for m in plan.cases if not m.closed]
    if closed:  # first: KEEP may hold only one open case per number
        await conn.execute(
            update(cases)
            .where(c.case_key.in_(closed), c.contact_id == plan.other_id)
            .values(contact_id=plan.keep_id, status="resolved", closed_at=at)
        )
    for i in range(0, len(others), 500):
        await conn.execute(
            update(cases)
            .where(c.case_key.in_(others[i : i + 500]), c.contact_id == plan.other_id)
            .values(contact_id=plan.keep_id)
        )


async def _rebook(conn: AsyncConnection, plan: MergePlan, crm: CrmOutcome, at: datetime) -> None:
    t = crm_records.c
    if plan.other_record is not None:
        await conn.execute(delete(crm_records).where(t.crm == crm.crm, t.key == plan.other_id))
    if plan.keep_record is None:
        return
    kind, record = plan.keep_record
    filled = set(record.filled)
    if crm.fields_merged and plan.other_record is not None:
        filled |= plan.other_record[1].filled
    crm_id = crm.keep_crm_id or record.crm_id
    if crm_id == record.crm_id and filled == set(record.filled):
        return
    await conn.execute(
        update(crm_records)
        .where(t.crm == crm.crm, t.kind == kind, t.key == plan.keep_id)
        .values(crm_id=crm_id, filled=sorted(filled), updated_at=at)
    )
