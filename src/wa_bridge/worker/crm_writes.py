"""What the worker adds around a connector call: the contacts a batch writes about, and
the events the CRM refused.

- :func:`with_contacts`: a status (or any note, case or outcome) of a contact the batch
  does not upsert gets an ``upsert_contact`` of its own, before its first operation, from
  what the event tells (the key, and the phone written ``if_empty``): the contact is
  created when the CRM has none, the same way for every connector (no unassociated note,
  no Task refused for a missing Contact), and found among the CRM's own records by phone
  first. For a contact the CRM has, it writes nothing (the phone is written only where
  none is: a late status for an old number does not move the contact back).
- :func:`refused_events`: the events whose operations the connector answered with
  :class:`~wa_bridge.connectors.base.OpRejected`, each with the CRM's first refusal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from wa_bridge.connectors.base import OpRejected, OpResult
from wa_bridge.errors import PermanentError
from wa_bridge.events import CanonicalEvent
from wa_bridge.operations import CrmOperation
from wa_bridge.worker import facts

__all__ = ["CONTACT_OF_NOTE", "refused_events", "with_contacts"]

# ``source`` of the contact operations added here (a mapping rule's is file:line).
CONTACT_OF_NOTE: Final = "wa-bridge: the contact of an operation that names it"
_INDEX: Final = -1  # never a mapped operation's index


def with_contacts(
    ops: Sequence[CrmOperation], events: Sequence[CanonicalEvent]
) -> list[CrmOperation]:
    """``ops``, with an ``upsert_contact`` before the first operation of each contact the
    batch names but does not upsert (see the module docstring)."""
    upserted = {op.contact_key for op in ops if op.kind == "upsert_contact"}
    by_id = {event.id: event for event in events}
    out: list[CrmOperation] = []
    for op in ops:
        key = op.contact_key
        if key is not None and key not in upserted:
            upserted.add(key)
            out.append(_contact_op(op, by_id.get(op.event_id)))
        out.append(op)
    return out


def _contact_op(op: CrmOperation, event: CanonicalEvent | None) -> CrmOperation:
    contact = facts.contact_of(event) if event is not None else None
    phone = contact.phone_e164 if contact is not None else None
    return CrmOperation(
        kind="upsert_contact",
        fields={"phone_e164": phone} if phone else {},
        event_id=op.event_id,
        index=_INDEX,
        contact_key=op.contact_key,
        source=CONTACT_OF_NOTE,
        write_modes={"phone_e164": "if_empty"} if phone else {},
    )


def refused_events(
    ops: Sequence[CrmOperation], results: Sequence[OpResult]
) -> dict[str, PermanentError]:
    """Event id → the first refusal among its operations' results (same order as ``ops``)."""
    refused: dict[str, PermanentError] = {}
    for op, result in zip(ops, results, strict=True):
        if isinstance(result, OpRejected):
            refused.setdefault(op.event_id, result.error)
    return refused
