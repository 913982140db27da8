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

from wa_bridge.slot_init import slot_init

__all__ = [
    "DEFAULT_MATCH_ORDER",
    "MATCH_RULES",
    "OPERATION_KINDS",
    "WRITE_MODES",
    "CrmOperation",
    "FieldValue",
    "MatchRule",
    "OperationKind",
    "WriteMode",
]

OperationKind = Literal[
    "upsert_contact",
    "upsert_case",
    "add_note",
    "record_outcome",
    "set_consent",
    "upsert_deal",
]
OPERATION_KINDS: Final[tuple[str, ...]] = get_args(OperationKind)

# Field ownership: how a connector may write a mapped field into an existing CRM record.
# - always:    on every operation (our own wa_* fields, keys, statuses);
# - on_create: only when this operation creates the record (e.g. when a case was opened);
# - if_empty:  only when the record has no value there (names: an agent's edit is kept).
WriteMode = Literal["always", "on_create", "if_empty"]
WRITE_MODES: Final[tuple[str, ...]] = get_args(WriteMode)

# How a connector looks for an existing CRM record before it creates a contact, in the
# order the mapping's ``match:`` gives: our key property, a phone variant, the e-mail.
MatchRule = Literal["key", "phone", "email"]
MATCH_RULES: Final[tuple[str, ...]] = get_args(MatchRule)
DEFAULT_MATCH_ORDER: Final[tuple[MatchRule, ...]] = ("key", "phone", "email")

# A mapped, validated field value. Lists only of scalars (e.g. tags).
Scalar = str | int | Decimal | bool | datetime | None
FieldValue = Scalar | tuple[Scalar, ...]


@slot_init
@dataclass(frozen=True, slots=True)
class CrmOperation:
    """One write the CRM must take.

    - ``kind``: which connector method applies it.
    - ``fields``: CRM field name → validated value (types checked by the mapping engine).
    - ``event_id`` / ``index``: where it came from; ``idempotency_key`` is derived from them.
    - ``contact_key``: the stable contact key from the identity map (set by the worker; the
      mapping engine leaves the event's own ``subject``).
    - ``case_key``: the conversation/case key for upsert_case, add_note, record_outcome
      and upsert_deal (a case's deal is keyed by the case: one deal per conversation).
    - ``source``: ``file:line`` of the mapping rule that emitted it, for error messages.
    - ``write_modes``: the :data:`WriteMode` of each field in ``fields`` that is not
      ``always`` (a field not listed is ``always``). A connector sends an ``on_create``
      field only when it creates the record, an ``if_empty`` field only when the record
      is new or holds no value there.
    """

    kind: OperationKind
    fields: Mapping[str, FieldValue] = field(repr=False)
    event_id: str
    index: int = 0
    contact_key: str | None = None
    case_key: str | None = None
    source: str | None = None
    write_modes: Mapping[str, WriteMode] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        return f"{self.event_id}:{self.index}"
