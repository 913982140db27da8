"""Adoptions of existing CRM records, as ``identity_events`` keeps them (``crm_matched``).

A contact the worker meets for the first time adopts the record the CRM already holds for
it (:mod:`wa_bridge.connectors._matching`). When several records hold the person's number
(or e-mail), the most recently modified one is adopted and the others stay in the CRM,
unused: an admin should look at them (merge them in the CRM, or tell them apart).

:func:`adoption_detail` writes the decision's ``detail`` (ids only, at most
:data:`DETAIL_CHARS`): ``"contacts 1002: the most recently modified of 2; not adopted:
1001"``; :func:`ambiguous_adoptions` reads back the decisions that had several
candidates, newest first, with the contact's current phone (for the caller to mask). A
decision written before the ids were kept says how many candidates there were and
``others_known`` is False.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import and_, not_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store.tables import identities, identity_events

__all__ = ["DETAIL_CHARS", "Adoption", "adoption_detail", "ambiguous_adoptions"]

DETAIL_CHARS: Final = 200  # identity_events.detail
_DETAIL = re.compile(
    r"(?P<kind>\S+) (?P<crm_id>\S+): the most recently modified of (?P<count>\d+)"
    r"(?:; not adopted: (?P<others>[^…]*?)(?P<cut> …)?)?"
)


@dataclass(frozen=True, slots=True)
class Adoption:
    """One contact's adoption of a record among several candidates."""

    event_id: int
    at: datetime
    contact_id: str
    rule: str  # phone | email
    kind: str  # the CRM's kind of record (contacts, Contact)
    crm_id: str  # the record adopted
    candidates: int
    others: tuple[str, ...]  # the records not adopted, most recently modified first
    others_known: bool  # False: recorded before the ids were kept, or cut at DETAIL_CHARS
    phone: str | None  # the contact's current phone (personal data: mask it to show)


def adoption_detail(kind: str, crm_id: str, candidates: int, others: Sequence[str]) -> str:
    """The ``detail`` of a ``crm_matched`` event: at most :data:`DETAIL_CHARS`; ids that do
    not fit are left off and the text ends with `` …``."""
    head = f"{kind} {crm_id}: the most recently modified of {candidates}"
    if not others:
        return head[:DETAIL_CHARS]
    text = f"{head}; not adopted:"
    for n, other in enumerate(others):
        room = DETAIL_CHARS - len(" …") if n < len(others) - 1 else DETAIL_CHARS
        if len(text) + 1 + len(other) > room:
            return f"{text} …"
        text = f"{text} {other}"
    return text


async def ambiguous_adoptions(conn: AsyncConnection, *, limit: int = 200) -> list[Adoption]:
    """The adoptions that had several candidates, newest first (at most ``limit``)."""
    e = identity_events.c
    single = e.detail.like("% of 1") | e.detail.like("% of 1;%")
    rows = await conn.execute(
        select(e.id, e.at, e.contact_id, e.kinds, e.detail)
        .where(e.decision == "crm_matched", e.detail.is_not(None), not_(single))
        .order_by(e.id.desc())
        .limit(limit)
    )
    found = [(row, _DETAIL.fullmatch(str(row.detail))) for row in rows]
    parsed = [(row, match) for row, match in found if match and int(match["count"]) > 1]
    phones = await _phones(conn, sorted({str(row.contact_id) for row, _ in parsed}))
    out = []
    for row, match in parsed:
        others = tuple((match["others"] or "").split())
        count = int(match["count"])
        out.append(
            Adoption(
                event_id=int(row.id),
                at=row.at,
                contact_id=str(row.contact_id),
                rule=str(row.kinds),
                kind=match["kind"],
                crm_id=match["crm_id"],
                candidates=count,
                others=others,
                others_known=len(others) == count - 1 and not match["cut"],
                phone=phones.get(str(row.contact_id)),
            )
        )
    return out


async def _phones(conn: AsyncConnection, contact_ids: Sequence[str]) -> dict[str, str]:
    if not contact_ids:
        return {}
    i = identities.c
    rows = await conn.execute(
        select(i.contact_id, i.value).where(
            and_(i.kind == "phone", i.is_current, i.contact_id.in_(contact_ids))
        )
    )
    return {str(row.contact_id): str(row.value) for row in rows}
