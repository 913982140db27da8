"""The consent ledger: auditable opt-in / opt-out evidence, one row per event, append-only.

Rows are only ever inserted (a redelivered event is skipped by its ``event_id``); nothing
updates or deletes them but an identity merge or unmerge, which moves a contact's rows
with it, and retention, which never touches this table. A contact's current state for a
channel and a purpose is its latest row by ``at`` (the time the consent was given or
withdrawn, not when we learnt of it): evidence recorded late never overrides a later
change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._upsert import insert_for
from wa_bridge.store.tables import consents, contacts, identities

__all__ = [
    "ConsentRecord",
    "ConsentStatus",
    "consent_history",
    "contact_by_reference",
    "record_consents",
]

ConsentStatus = Literal["opt_in", "opt_out"]


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One consent event of a contact.

    ``channel``: what the consent is for (``whatsapp``); ``purpose``: ``marketing``,
    ``utility``…; ``captured_via``: where it was given (``whatsapp_preferences``,
    ``whatsapp_keyword``, ``web_form``, ``pos``, ``sms``…); ``text_shown``: what the
    customer was shown; ``source``: the form, store or system that captured it;
    ``recorded_by``: who recorded it (an admin token's hash, or the worker).
    """

    event_id: str
    contact_id: str
    status: ConsentStatus
    at: datetime
    channel: str = "whatsapp"
    purpose: str = "marketing"
    evidence: str | None = None
    captured_via: str | None = None
    text_shown: str | None = None
    source: str | None = None
    recorded_by: str | None = None
    recorded_at: datetime | None = None


async def record_consents(conn: AsyncConnection, records: Sequence[ConsentRecord]) -> list[bool]:
    """Append the records (an event already recorded is skipped: redelivery). For each
    record: True when it is now its contact's current state for its channel and purpose
    (new, and no row of the ledger is later)."""
    if not records:
        return []
    stmt = insert_for(conn, consents).on_conflict_do_nothing(index_elements=["event_id"])
    # a record's fields are the ledger row's columns
    await conn.execute(stmt, [asdict(r) for r in records])
    out: list[bool] = []
    for r in records:
        later = await conn.execute(
            select(consents.c.id)
            .where(
                consents.c.contact_id == r.contact_id,
                consents.c.channel == r.channel,
                consents.c.purpose == r.purpose,
                or_(
                    consents.c.at > r.at,
                    and_(consents.c.at == r.at, consents.c.event_id > r.event_id),
                ),
            )
            .limit(1)
        )
        out.append(later.first() is None)
    return out


async def consent_history(conn: AsyncConnection, contact_id: str) -> list[dict[str, Any]]:
    """Every consent row of ``contact_id``, oldest first (by ``at``, then by ledger id)."""
    rows = await conn.execute(
        select(consents)
        .where(consents.c.contact_id == contact_id)
        .order_by(consents.c.at, consents.c.id)
    )
    return [dict(row) for row in rows.mappings()]


async def contact_by_reference(conn: AsyncConnection, reference: str) -> str | None:
    """The contact id ``reference`` names: a contact id, or a phone (E.164 or as typed,
    any form ``phone_forms`` knows) or a BSUID currently linked to one."""
    from wa_bridge.normalize.phones import user_e164

    found = await conn.execute(
        select(contacts.c.contact_id).where(contacts.c.contact_id == reference)
    )
    if found.first() is not None:
        return reference
    values = [reference]
    e164 = user_e164(reference)
    if e164 is not None:
        values.append(e164)
    linked = await conn.execute(
        select(identities.c.contact_id)
        .where(identities.c.value.in_(values), identities.c.is_current)
        .order_by(identities.c.linked_at.desc())
        .limit(1)
    )
    row = linked.first()
    return str(row[0]) if row is not None else None
