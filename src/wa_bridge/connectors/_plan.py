"""The record plan: a batch's operations merged per CRM record, and the rules every
connector shares for reading an operation (its keys, a note's key, status-only notes,
field values as JSON).

A vendor translates each operation into a :class:`Write` (which record, which values,
under which write mode); :class:`RecordPlan` merges the writes of one record into one
:class:`Record` (a later operation's values winning), so each record costs one write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Generic, Literal, TypeVar

from wa_bridge.errors import MappingOutputInvalid, UnkeyedOperation
from wa_bridge.operations import CrmOperation, FieldValue, WriteMode

# No __all__: the vendors read these names from :mod:`._records`, whose list is the one.

G = TypeVar("G", bound=str)  # a vendor's record groups, in write order (a Literal)
V = TypeVar("V")  # a vendor's field value type


# --- operation rules ------------------------------------------------------------------
def require_key(op: CrmOperation, name: Literal["contact_key", "case_key"]) -> str:
    """``op``'s contact or case key; raises UnkeyedOperation when it has none."""
    value = op.contact_key if name == "contact_key" else op.case_key
    if not value:
        raise UnkeyedOperation(
            f"{op.kind} of event {op.event_id} has no {name}; the worker must resolve it"
        )
    return value


def is_status_only(fields: Mapping[str, FieldValue]) -> bool:
    """A note operation carrying only a message's delivery status: it must keep what the
    message wrote (body, time)."""
    return "status" in fields and "body" not in fields and "direction" not in fields


def case_statuses(open: str, pending: str, resolved: str, closed: str) -> Mapping[str, str]:
    """A CRM's value for each case status a mapping writes (all four, by name)."""
    return MappingProxyType(
        {"open": open, "pending": pending, "resolved": resolved, "closed": closed}
    )


def case_status(op: CrmOperation, statuses: Mapping[str, str], crm_word: str) -> str:
    """The CRM's value for an ``upsert_case``'s ``status`` (``crm_word`` names it)."""
    value = statuses.get(str(op.fields.get("status")))
    if value is None:
        raise MappingOutputInvalid(
            f"upsert_case of event {op.event_id}: no {crm_word} for status",
            location=op.source,
            field="status",
        )
    return value


def deal_stage(op: CrmOperation, stages: Mapping[str, str], crm_word: str) -> str:
    """The CRM's value for an ``upsert_deal``'s ``stage`` (``crm_word`` names it)."""
    value = op.fields.get("stage")
    stage = stages.get(str(value))
    if stage is None:
        raise MappingOutputInvalid(
            f"upsert_deal of event {op.event_id}: no {crm_word} for "
            f"{value!r} (WA_BRIDGE_CRM_DEAL_STAGES)",
            location=op.source,
            field="stage",
        )
    return stage


def json_value(value: FieldValue) -> Any:
    """A field value as JSON: datetimes ISO 8601, decimals as strings (no float rounding)."""
    if isinstance(value, tuple):
        return [json_value(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def modes_of(op: CrmOperation, names: Callable[[str], Iterable[str]]) -> dict[str, WriteMode]:
    """``op``'s write modes by the CRM names ``names`` gives each of its fields."""
    return {
        name: mode
        for field_name, mode in op.write_modes.items()
        if mode != "always"
        for name in names(field_name)
    }


# --- the plan -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MatchFacts:
    """What a contact operation tells about finding the person's existing CRM record."""

    phone_e164: str | None = None
    email: str | None = None

    @classmethod
    def of(cls, op: CrmOperation) -> MatchFacts:
        phone, email = op.fields.get("phone_e164"), op.fields.get("email")
        return cls(
            phone if isinstance(phone, str) and phone else None,
            email if isinstance(email, str) and email else None,
        )


@dataclass(frozen=True, slots=True)
class Write(Generic[G, V]):
    """What one operation writes: ``values`` on the record ``key`` of ``group``.

    ``modes``: the write mode of each value that is not ``always``. ``defaults``: values
    the CRM needs when the record is created (a ticket's subject, a Contact's LastName),
    sent only then and only where ``values`` set none. ``together``: values the CRM checks
    against each other (a ticket's stage and pipeline): when one is sent, all are.
    """

    group: G
    key: str
    values: Mapping[str, V]
    defaults: Mapping[str, V] = field(default_factory=dict)
    modes: Mapping[str, WriteMode] = field(default_factory=dict)
    contact_key: str | None = None  # the records it links to, where the CRM needs that
    case_key: str | None = None
    facts: MatchFacts | None = None  # a contact's: how to find it among existing records
    together: frozenset[str] = frozenset()  # values sent together or not at all


@dataclass(slots=True)
class Record(Generic[V]):
    """One CRM record to write, merged from every operation of the batch that touches it."""

    key: str
    values: dict[str, V] = field(default_factory=dict)
    defaults: dict[str, V] = field(default_factory=dict)
    modes: dict[str, WriteMode] = field(default_factory=dict)
    op_indexes: list[int] = field(default_factory=list)  # in order: the first came first
    contact_key: str | None = None
    case_key: str | None = None
    facts: MatchFacts = field(default_factory=MatchFacts)
    together: frozenset[str] = frozenset()

    def mode(self, name: str) -> WriteMode:
        return self.modes.get(name, "always")

    def merge(self, index: int, write: Write[Any, V]) -> None:
        """Merge operation ``index``'s write (operations come in order: the later wins)."""
        for name, value in write.values.items():
            self.values[name] = value
            mode = write.modes.get(name)
            if mode is None or mode == "always":
                self.modes.pop(name, None)
            else:
                self.modes[name] = mode
        for name, value in write.defaults.items():
            self.defaults.setdefault(name, value)
        self.op_indexes.append(index)
        self.together |= write.together
        self.contact_key = write.contact_key or self.contact_key
        self.case_key = write.case_key or self.case_key
        if write.facts is not None:
            self.facts = MatchFacts(
                write.facts.phone_e164 or self.facts.phone_e164,
                write.facts.email or self.facts.email,
            )

    def created_values(self) -> dict[str, V]:
        """Everything, as the record is created: the defaults under the values."""
        return {**self.defaults, **self.values}

    def wants_existing(self) -> bool:
        """True when what is sent depends on whether the record exists (create-only
        defaults, ``on_create`` or ``if_empty`` values)."""
        return bool(self.defaults) or bool(self.modes)


class RecordPlan(Generic[G, V]):
    """A batch's records per group (in write order), and the record of each operation."""

    def __init__(self, groups: Iterable[G]) -> None:
        self._records: dict[G, dict[str, Record[V]]] = {group: {} for group in groups}
        self._targets: dict[int, tuple[G, str]] = {}

    def add(self, index: int, write: Write[G, V]) -> None:
        """Merge operation ``index``'s write into its record (operations come in order)."""
        record = self._records[write.group].setdefault(write.key, Record(write.key))
        record.merge(index, write)
        self._targets[index] = (write.group, write.key)

    def records(self, group: G) -> list[Record[V]]:
        return list(self._records[group].values())

    def record(self, group: G, key: str) -> Record[V] | None:
        return self._records[group].get(key)

    def target(self, index: int) -> tuple[G, str] | None:
        """The record operation ``index`` writes (None: it was not translated)."""
        return self._targets.get(index)
