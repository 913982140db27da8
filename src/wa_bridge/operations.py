"""Typed CRM operations: the contract between the mapping engine and the CRM connectors.

The mapping engine turns one canonical event into an ordered list of operations; the
worker fills in the references it resolved (contact and case keys) and hands them to a
connector. Every operation is idempotent on ``idempotency_key``: applying it twice has the
effect of applying it once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal, get_args

__all__ = [
    "OPERATION_KINDS",
    "CrmOperation",
    "FieldValue",
    "OperationKind",
]

OperationKind = Literal[
    "upsert_contact",
    "upsert_case",
    "add_note",
    "record_outcome",
    "set_consent",
]
OPERATION_KINDS: Final[tuple[str, ...]] = get_args(OperationKind)

# A mapped, validated field value. Lists only of scalars (e.g. tags).
Scalar = str | int | Decimal | bool | datetime | None
FieldValue = Scalar | tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class CrmOperation:
    """One write the CRM must take.

    - ``kind``: which connector method applies it.
    - ``fields``: CRM field name → validated value (types checked by the mapping engine).
    - ``event_id`` / ``index``: where it came from; ``idempotency_key`` is derived from them.
    - ``contact_key``: the stable contact key from the identity map (set by the worker; the
      mapping engine leaves the event's own ``subject``).
    - ``case_key``: the conversation/case key for upsert_case, add_note and record_outcome.
    - ``source``: ``file:line`` of the mapping rule that emitted it, for error messages.
    """

    kind: OperationKind
    fields: Mapping[str, FieldValue] = field(repr=False)
    event_id: str
    index: int = 0
    contact_key: str | None = None
    case_key: str | None = None
    source: str | None = None

    @property
    def idempotency_key(self) -> str:
        return f"{self.event_id}:{self.index}"
