"""Converted cases with their click, source and consent: the offline-conversion export.

A conversion is a case closed as ``converted`` (the inbox's ``converted``) or resolved
with a winning outcome (``won``). For each one :func:`conversions_since` gives the click
id (``ctwa_clid``) and source of the touch that opened the case, else of the contact's
first touch; the contact's marketing consent as it stood when the case converted (the
latest ledger row up to then: state, time, how it was captured); the outcome, its value
and currency, and the case's times. Ads platforms take such rows as offline conversions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store.tables import cases, consents, contacts

__all__ = ["CONVERSION_COLUMNS", "Conversion", "conversions_since"]

_WINNING: Final = ("won", "converted")


@dataclass(frozen=True, slots=True)
class Conversion:
    """One converted case, as an offline-conversion row (see the module docstring)."""

    case_key: str
    contact_id: str
    ctwa_clid: str | None
    touch: str | None  # case | first_touch: where the click id and source come from
    source_type: str | None
    source_id: str | None
    source_url: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    consent_status: str | None
    consent_at: datetime | None
    consent_captured_via: str | None
    consent_evidence: str | None
    outcome: str | None
    value: Decimal | None
    currency: str | None
    opened_at: datetime
    converted_at: datetime | None


CONVERSION_COLUMNS: Final[tuple[str, ...]] = tuple(Conversion.__dataclass_fields__)


def _touch(case_touch: Any, first_touch: Any) -> tuple[str | None, Mapping[str, Any]]:
    if isinstance(case_touch, dict) and case_touch:
        return "case", case_touch
    if isinstance(first_touch, dict) and first_touch:
        return "first_touch", first_touch
    return None, {}


async def _consent_at(
    conn: AsyncConnection, contact_id: str, until: datetime | None
) -> Mapping[str, Any] | None:
    """The contact's latest WhatsApp marketing consent row up to ``until``."""
    stmt = (
        select(consents)
        .where(
            consents.c.contact_id == contact_id,
            consents.c.channel == "whatsapp",
            consents.c.purpose == "marketing",
        )
        .order_by(consents.c.at.desc(), consents.c.event_id.desc())
        .limit(1)
    )
    if until is not None:
        stmt = stmt.where(consents.c.at <= until)
    row = (await conn.execute(stmt)).mappings().first()
    return dict(row) if row is not None else None


async def conversions_since(
    conn: AsyncConnection, since: datetime, *, limit: int = 100_000
) -> list[Conversion]:
    """Converted cases closed at or after ``since``, oldest first."""
    stmt = (
        select(cases, contacts.c.first_touch)
        .join(contacts, contacts.c.contact_id == cases.c.contact_id, isouter=True)
        .where(
            or_(cases.c.close_reason == "converted", cases.c.outcome.in_(_WINNING)),
            cases.c.closed_at.is_not(None),
            cases.c.closed_at >= since,
        )
        .order_by(cases.c.closed_at, cases.c.case_key)
        .limit(limit)
    )
    out: list[Conversion] = []
    for row in (await conn.execute(stmt)).mappings():
        where, touch = _touch(row["attribution"], row["first_touch"])
        consent = await _consent_at(conn, row["contact_id"], row["closed_at"])
        out.append(
            Conversion(
                case_key=row["case_key"],
                contact_id=row["contact_id"],
                ctwa_clid=touch.get("ctwa_clid"),
                touch=where,
                source_type=touch.get("source_type"),
                source_id=touch.get("source_id"),
                source_url=touch.get("source_url"),
                utm_source=touch.get("utm_source"),
                utm_medium=touch.get("utm_medium"),
                utm_campaign=touch.get("utm_campaign"),
                consent_status=consent["status"] if consent else None,
                consent_at=consent["at"] if consent else None,
                consent_captured_via=consent["captured_via"] if consent else None,
                consent_evidence=consent["evidence"] if consent else None,
                outcome=row["outcome"],
                value=row["outcome_value"],
                currency=row["outcome_currency"],
                opened_at=row["opened_at"],
                converted_at=row["closed_at"],
            )
        )
    return out
