"""The machinery the connectors share; a vendor keeps only its translation.

:class:`RecordConnector` is the one shape of a connector that upserts CRM records by our
own keys (HubSpot, Salesforce). A vendor subclass says which record an operation writes
(:meth:`~RecordConnector._translate`), how to look records up and upsert a chunk of them,
and what to do afterwards (HubSpot's associations). The rest is here, once:

- the record plan: a batch's operations merged per record (one write per record, a later
  operation's values winning), each operation remembering its record;
- create-only defaults (a ticket's subject, a Contact's LastName): sent only for records
  that do not exist yet; keys missing from the id cache are looked up first (once per
  chunk), so an update never overwrites a value an agent set in the CRM;
- the id cache (our key → the CRM's record id), bounded;
- the earliest failing operation wins: a refused record raises for the first operation
  that touched it, through :func:`~wa_bridge.connectors.http.item_error`.

Every connector (the REST and SQL ones too) shares the operation rules below it: the keys
an operation must carry, a note's key, what a status-only note is, field values as JSON.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Generic, Literal, TypeVar

import httpx

from wa_bridge.connectors.base import CrmResult
from wa_bridge.connectors.http import ErrorDialect, item_error
from wa_bridge.errors import CrmUnavailable, MappingOutputInvalid, UnkeyedOperation
from wa_bridge.operations import CrmOperation, FieldValue

__all__ = [
    "IdCache",
    "Record",
    "RecordConnector",
    "RecordPlan",
    "Upserted",
    "Write",
    "case_status",
    "is_status_only",
    "json_value",
    "note_key",
    "require_key",
]

G = TypeVar("G", bound=str)  # a vendor's record groups, in write order (a Literal)
V = TypeVar("V")  # a vendor's field value type

_CACHE_MAX: Final = 50_000


# --- operation rules ------------------------------------------------------------------
def require_key(op: CrmOperation, name: Literal["contact_key", "case_key"]) -> str:
    """``op``'s contact or case key; raises UnkeyedOperation when it has none."""
    value = op.contact_key if name == "contact_key" else op.case_key
    if not value:
        raise UnkeyedOperation(
            f"{op.kind} of event {op.event_id} has no {name}; the worker must resolve it"
        )
    return value


def note_key(op: CrmOperation) -> str:
    """A note's key: its message id (so a status updates the message's note), else the
    operation's idempotency key."""
    message_id = op.fields.get("message_id")
    return str(message_id) if message_id else op.idempotency_key


def is_status_only(fields: Mapping[str, FieldValue]) -> bool:
    """A note operation carrying only a message's delivery status: it must keep what the
    message wrote (body, time)."""
    return "status" in fields and "body" not in fields and "direction" not in fields


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


def json_value(value: FieldValue) -> Any:
    """A field value as JSON: datetimes ISO 8601, decimals as strings (no float rounding)."""
    if isinstance(value, tuple):
        return [json_value(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


# --- the record plan ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Write(Generic[G, V]):
    """What one operation writes: ``values`` on the record ``key`` of ``group``."""

    group: G
    key: str
    values: Mapping[str, V]
    # Sent only when the record is created (the CRM requires them then); never on update.
    defaults: Mapping[str, V] = field(default_factory=dict)
    contact_key: str | None = None  # the records to link it to, where the CRM needs that
    case_key: str | None = None


@dataclass(slots=True)
class Record(Generic[V]):
    """One CRM record to upsert, merged from every operation of the batch that touches it."""

    key: str
    values: dict[str, V] = field(default_factory=dict)
    create_defaults: dict[str, V] = field(default_factory=dict)
    op_indexes: list[int] = field(default_factory=list)  # in order: the first came first
    contact_key: str | None = None
    case_key: str | None = None

    @property
    def wants_defaults(self) -> bool:
        """True when a create-only default is not set by the operations themselves."""
        return any(name not in self.values for name in self.create_defaults)

    def to_send(self, *, exists: bool) -> dict[str, V]:
        """The values to send: with the create-only defaults unless the record exists."""
        return self.values if exists else {**self.create_defaults, **self.values}


class RecordPlan(Generic[G, V]):
    """A batch's records per group (in write order), and the record of each operation."""

    def __init__(self, groups: Iterable[G]) -> None:
        self._records: dict[G, dict[str, Record[V]]] = {group: {} for group in groups}
        self._targets: dict[int, tuple[G, str]] = {}

    def add(self, index: int, write: Write[G, V]) -> None:
        """Merge operation ``index``'s write into its record (operations come in order)."""
        record = self._records[write.group].setdefault(write.key, Record(write.key))
        record.values.update(write.values)
        record.create_defaults.update(write.defaults)
        record.op_indexes.append(index)
        record.contact_key = write.contact_key or record.contact_key
        record.case_key = write.case_key or record.case_key
        self._targets[index] = (write.group, write.key)

    def records(self, group: G) -> list[Record[V]]:
        return list(self._records[group].values())

    def results(self, written: Mapping[tuple[G, str], CrmResult]) -> list[CrmResult]:
        """Each operation's result: its record's."""
        return [written[self._targets[index]] for index in range(len(self._targets))]


class IdCache(Generic[G]):
    """Our key → the CRM's record id, per group. A cache: the CRM stays the source of
    truth, so it is simply emptied when full."""

    def __init__(self, max_size: int = _CACHE_MAX) -> None:
        self._ids: dict[tuple[G, str], str] = {}
        self._max_size = max_size

    def get(self, group: G, key: str) -> str | None:
        return self._ids.get((group, key))

    def knows(self, group: G, key: str) -> bool:
        return (group, key) in self._ids

    def remember(self, group: G, key: str, crm_id: str) -> None:
        if len(self._ids) >= self._max_size:
            self._ids.clear()
        self._ids[(group, key)] = crm_id

    def unknown(self, group: G, keys: Iterable[str | None]) -> list[str]:
        """The keys (sorted, once each) whose ids are not cached."""
        return sorted({k for k in keys if k is not None and not self.knows(group, k)})


@dataclass(slots=True)
class Upserted(Generic[V]):
    """A CRM's answer to one upsert chunk."""

    ids: dict[str, tuple[str, bool]] = field(default_factory=dict)  # key → (CRM id, created)
    refused: list[tuple[Record[V], Any]] = field(default_factory=list)  # record, error body


# --- the connector shape --------------------------------------------------------------
class RecordConnector(ABC, Generic[G, V]):
    """A :class:`~wa_bridge.connectors.base.CrmConnector` that upserts records by our keys.

    Owns ``client`` (closed by :meth:`aclose`). Raises only :mod:`wa_bridge.errors`.
    Subclasses set ``name``, ``max_batch`` (records per upsert call), ``groups`` (record
    groups in write order) and ``errors`` (the vendor's dialect).
    """

    name: str
    max_batch: int
    groups: tuple[G, ...]
    errors: ErrorDialect

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client
        self._ids: IdCache[G] = IdCache()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def apply(self, ops: Sequence[CrmOperation]) -> Sequence[CrmResult]:
        """Write ``ops`` merged per record, group after group, ``max_batch`` records per
        call; raise on the first refused record, for the earliest operation that touched it.
        """
        plan: RecordPlan[G, V] = RecordPlan(self.groups)
        for index, op in enumerate(ops):
            plan.add(index, self._translate(op))
        written: dict[tuple[G, str], CrmResult] = {}
        for group in self.groups:
            records = plan.records(group)
            for start in range(0, len(records), self.max_batch):
                chunk = records[start : start + self.max_batch]
                written.update(await self._write(group, chunk, ops))
        await self._after(plan)
        return plan.results(written)

    async def _write(
        self, group: G, chunk: Sequence[Record[V]], ops: Sequence[CrmOperation]
    ) -> dict[tuple[G, str], CrmResult]:
        await self._resolve(group, (r.key for r in chunk if r.wants_defaults))
        values = [r.to_send(exists=self._ids.knows(group, r.key)) for r in chunk]
        answer = await self._upsert(group, chunk, values)
        where = f"upsert {self._object_type(group)}"
        if answer.refused:
            record, body = min(answer.refused, key=lambda refused: refused[0].op_indexes[0])
            op = ops[record.op_indexes[0]]
            raise item_error(self.errors, op, status=400, body=body, what=f"refused in {where}")
        missing = [r.key for r in chunk if r.key not in answer.ids]
        if missing:
            raise CrmUnavailable(f"{self.name}: {where} answered no result for {len(missing)}")
        out: dict[tuple[G, str], CrmResult] = {}
        for record in chunk:
            crm_id, created = answer.ids[record.key]
            self._ids.remember(group, record.key, crm_id)
            out[(group, record.key)] = CrmResult(crm_id=crm_id, created=created)
        return out

    async def _resolve(self, group: G, keys: Iterable[str | None]) -> None:
        """Cache the ids of the records among ``keys`` this process has not seen yet."""
        unknown = self._ids.unknown(group, keys)
        if unknown:
            await self._lookup(group, unknown)

    def _object_type(self, group: G) -> str:
        """The CRM's name for ``group``'s records, for messages (and, often, paths)."""
        return group

    # --- the vendor's translation -----------------------------------------------------
    @abstractmethod
    def _translate(self, op: CrmOperation) -> Write[G, V]:
        """The record ``op`` writes, and with what."""

    @abstractmethod
    async def _lookup(self, group: G, keys: Sequence[str]) -> None:
        """Find existing records by our ``keys`` and remember their ids (``self._ids``)."""

    @abstractmethod
    async def _upsert(
        self, group: G, chunk: Sequence[Record[V]], values: Sequence[Mapping[str, V]]
    ) -> Upserted[V]:
        """Upsert ``chunk`` (at most ``max_batch`` records) with ``values``, in order."""

    async def _after(self, plan: RecordPlan[G, V]) -> None:
        """Run after every record is written (e.g. link records); nothing by default."""
