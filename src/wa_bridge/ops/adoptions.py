"""``wa-bridge identity adoptions``: records the CRM holds twice for one person.

When several existing CRM records held a new contact's number (or e-mail), the worker
adopted the most recently modified one and left the others unused
(:mod:`wa_bridge.store.adoptions`). :func:`adoptions` lists those decisions, with both CRM
ids, for an admin to merge or tell apart in the CRM; :func:`adoption_data` shows the
contact's phone masked (with its keyed hash) unless ``reveal``. Every listing is written
to ``audit_log`` (``identity.adoptions``, or ``identity.adoptions.reveal``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wa_bridge.ops.identity import Listing, audited_listing, shown
from wa_bridge.store.adoptions import Adoption, ambiguous_adoptions

if TYPE_CHECKING:
    from wa_bridge.store.sql import SqlStore

__all__ = ["adoption_data", "adoptions"]


async def adoptions(
    store: SqlStore, *, actor: str, role: str, reveal: bool = False, limit: int = 200
) -> list[Adoption]:
    """The adoptions that left other records unused, newest first; audited."""
    return await audited_listing(
        store,
        "identity adoptions",
        lambda conn: ambiguous_adoptions(conn, limit=limit),
        Listing(actor, role, "identity.adoptions", "crm_records", "adoption(s)", reveal),
    )


def adoption_data(item: Adoption, *, reveal: bool = False) -> dict[str, Any]:
    """An adoption as JSON data: the contact (phone masked unless ``reveal``), the record
    adopted and the ones left unused."""
    return {
        "event_id": item.event_id,
        "at": item.at.isoformat(),
        "contact_id": item.contact_id,
        "phone": shown("phone", item.phone, reveal=reveal),
        "rule": item.rule,
        "kind": item.kind,
        "adopted": item.crm_id,
        "not_adopted": list(item.others),
        "candidates": item.candidates,
        "complete": item.others_known,
    }
