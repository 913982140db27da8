"""The machinery the record connectors share; a vendor keeps only its translation.

:class:`RecordConnector` is the one shape of a connector that writes CRM records under our
own keys (HubSpot, Salesforce). A vendor subclass says which record an operation writes
(:meth:`~RecordConnector._translate`), how to find records (by our key; a contact by key,
phone and e-mail, in one lookup per batch), how to upsert a chunk of them by key or update
adopted ones by id, and what to do afterwards (HubSpot's associations). The rest is here,
once, group after group (contacts, then cases, then notes):

1. the plan: a batch's operations merged per record (one write per record);
2. what is known of each record: the book (``crm_records``), else one lookup per group and
   batch: a contact is matched (:mod:`._matching`) and an existing record adopted, a case
   or note looked up by key only when create-only values are at stake;
3. what to send: all values when the record is created; to an existing record neither
   ``on_create`` values nor ``if_empty`` ones it is known to hold, and no value whose hash
   equals the one last written (a record with nothing left costs no request);
4. refusals become :class:`~wa_bridge.connectors.base.OpRejected` for the record's
   operations, and for those of records linked to it; a record the CRM lost (deleted by a
   user) is written again in full under our key, once, not refused;
5. the book learns the ids, the filled fields and the hashes of what was written.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Generic, Literal, TypeVar

import httpx

from wa_bridge.connectors._matching import Candidate, choose
from wa_bridge.connectors._plan import (
    MatchFacts,
    Record,
    RecordPlan,
    Write,
    case_status,
    is_status_only,
    json_value,
    modes_of,
    note_key,
    require_key,
)
from wa_bridge.connectors.base import CrmResult, OpRejected, OpResult
from wa_bridge.connectors.http import ErrorDialect, item_error
from wa_bridge.errors import CrmUnavailable, PermanentError
from wa_bridge.operations import DEFAULT_MATCH_ORDER, CrmOperation, MatchRule
from wa_bridge.store.book import KnownRecord, MatchKind, RecordBook, value_hash

__all__ = [
    "Candidate",
    "MatchFacts",
    "Record",
    "RecordConnector",
    "RecordPlan",
    "Refusal",
    "Upserted",
    "Write",
    "WriteCall",
    "case_status",
    "is_status_only",
    "json_value",
    "modes_of",
    "note_key",
    "require_key",
]

G = TypeVar("G", bound=str)  # a vendor's record groups, in write order (a Literal)
V = TypeVar("V")  # a vendor's field value type

_OWN_BOOK_MAX: Final = 50_000  # records a connector remembers when no book is given
Retry = Literal["create", "links"]


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


@dataclass(slots=True)
class Upserted(Generic[V]):
    """A CRM's answer to one write chunk."""

    ids: dict[str, tuple[str, bool]] = field(default_factory=dict)  # key → (CRM id, created)
    refused: list[tuple[Record[V], Any]] = field(default_factory=list)  # record, error body


@dataclass(frozen=True, slots=True)
class _Target:
    """What is known of a record before it is written."""

    crm_id: str | None  # None: it is created
    match: MatchKind = "created"
    filled: frozenset[str] = frozenset()
    written: Mapping[str, str] = field(default_factory=dict)
    by_id: bool = False  # adopted: it does not carry our key yet, so it is written by id

    @classmethod
    def of(cls, known: KnownRecord) -> _Target:
        return cls(known.crm_id, known.match, known.filled, known.written)


NEW: Final = _Target(None)


@dataclass(frozen=True, slots=True)
class Refusal:
    """The CRM refused a record: its status and error body, and what happened (for the
    message; empty: refused in the record's own write)."""

    status: int
    body: Any
    what: str


class WriteCall(Generic[G, V]):
    """One :meth:`RecordConnector.apply` call: the plan, the book, how each record ended."""

    def __init__(self, book: RecordBook, plan: RecordPlan[G, V], ops: Sequence[CrmOperation]):
        self.book = book
        self.plan = plan
        self.ops = ops
        self.op_errors: dict[int, PermanentError] = {}
        self.targets: dict[tuple[G, str], _Target] = {}
        self.done: dict[tuple[G, str], CrmResult] = {}
        self.refused: dict[tuple[G, str], Refusal] = {}
        self.learned: dict[tuple[G, str], KnownRecord] = {}
        self.forgotten: set[tuple[G, str]] = set()
        self.rewritten: set[tuple[G, str]] = set()
        self.matches: list[tuple[G, str, MatchRule, int]] = []  # group, key, rule, count

    # --- what is known ----------------------------------------------------------------
    def id_of(self, group: G, key: str | None) -> str | None:
        """The CRM id of ``key``'s ``group`` record: written in this call, else the book's."""
        if key is None or (group, key) in self.refused:
            return None
        slot = (group, key)
        if slot in self.done:
            return self.done[slot].crm_id
        if slot in self.forgotten:
            return None
        known = self.book.get(group, key)
        return known.crm_id if known is not None else None

    def was_known(self, group: G, key: str) -> bool:
        """True when the book knew the record before this call (it was linked then)."""
        return self.book.knows(group, key) and (group, key) not in self.forgotten

    def slot_of_id(self, group: G, crm_id: str) -> tuple[G, str] | None:
        for slot, result in self.done.items():
            if slot[0] == group and result.crm_id == crm_id:
                return slot
        for record in self.plan.records(group):
            known = self.book.get(group, record.key)
            if known is not None and known.crm_id == crm_id:
                return (group, record.key)
        return None

    # --- outcomes ---------------------------------------------------------------------
    def accept(
        self,
        group: G,
        record: Record[V],
        crm_id: str,
        created: bool,
        sent: Mapping[str, V],
        target: _Target,
    ) -> None:
        """``record`` was written: remember its id, what it holds now, what we sent."""
        slot = (group, record.key)
        fresh = created or target.crm_id is None or target.crm_id != crm_id
        filled = set() if fresh else set(target.filled)
        filled |= {
            name
            for name, value in sent.items()
            if record.mode(name) == "if_empty" and not _empty(value)
        }
        written = {} if fresh else dict(target.written)
        written |= {name: value_hash(value) for name, value in sent.items()}
        match: MatchKind = "created" if fresh and target.crm_id is None else target.match
        self.learned[slot] = KnownRecord(crm_id, match, frozenset(filled), written)
        self.done[slot] = CrmResult(crm_id=crm_id, created=created)
        self.refused.pop(slot, None)

    def found(self, group: G, key: str, crm_id: str) -> None:
        """A record this call did not write was looked up by our key: the book learns it."""
        slot = (group, key)
        if slot not in self.done:
            self.done[slot] = CrmResult(crm_id=crm_id, created=False)
            self.learned[slot] = KnownRecord(crm_id, "key")

    def unchanged(self, group: G, record: Record[V], target: _Target) -> None:
        """Nothing to write: the record holds what we would send."""
        assert target.crm_id is not None
        slot = (group, record.key)
        self.done[slot] = CrmResult(crm_id=target.crm_id, created=False)
        if not self.book.knows(group, record.key):  # found by a lookup: the book learns it
            self.learned[slot] = KnownRecord(
                target.crm_id, target.match, target.filled, target.written
            )

    def refuse(self, group: G, key: str, refusal: Refusal) -> None:
        slot = (group, key)
        self.refused[slot] = refusal
        self.done.pop(slot, None)
        self.learned.pop(slot, None)

    def forget(self, group: G, key: str) -> None:
        slot = (group, key)
        self.forgotten.add(slot)
        self.learned.pop(slot, None)
        self.done.pop(slot, None)

    # --- the end ----------------------------------------------------------------------
    def settle(self) -> None:
        """Tell the book what this call learned (nothing about refused records)."""
        for group, key in self.forgotten:
            self.book.forget(group, key)
        for (group, key), known in self.learned.items():
            self.book.remember(
                group,
                key,
                known.crm_id,
                match=known.match,
                filled=known.filled,
                written=known.written,
            )
        for group, key, rule, count in self.matches:
            if (group, key) in self.learned:
                self.book.note_match(group, key, rule, count)

    def results(self, errors: ErrorDialect, where: Mapping[G, str]) -> list[OpResult]:
        """One result per operation: its record's, or its refusal with the CRM's message."""
        out: list[OpResult] = []
        for index, op in enumerate(self.ops):
            error = self.op_errors.get(index)
            if error is not None:
                out.append(OpRejected(error))
                continue
            slot = self.plan.target(index)
            if slot is None:
                raise CrmUnavailable(f"{errors.vendor}: {op.kind} of {op.event_id} got no record")
            refusal = self.refused.get(slot)
            if refusal is not None:
                what = refusal.what or f"refused in {where.get(slot[0], slot[0])}"
                wrapped = item_error(
                    errors, op, status=refusal.status, body=refusal.body, what=what
                )
                out.append(OpRejected(_permanent(wrapped)))
                continue
            result = self.done.get(slot)
            if result is None:
                raise CrmUnavailable(f"{errors.vendor}: no result for {op.kind} of {op.event_id}")
            out.append(result)
        return out


def _permanent(error: Exception) -> PermanentError:
    if isinstance(error, PermanentError):
        return error
    raise error  # a rate limit or an outage inside a batch answer fails the whole call


class RecordConnector(ABC, Generic[G, V]):
    """A :class:`~wa_bridge.connectors.base.CrmConnector` that writes records by our keys.

    Owns ``client`` (closed by :meth:`aclose`). Raises only :mod:`wa_bridge.errors`.
    Subclasses set ``name``, ``max_batch`` (records per write call), ``groups`` (record
    groups in write order: contacts, cases, notes), ``contact_group``, ``case_group`` and
    ``errors`` (the vendor's dialect).
    """

    name: str
    max_batch: int
    groups: tuple[G, ...]
    contact_group: G
    case_group: G
    errors: ErrorDialect

    def __init__(
        self, client: httpx.AsyncClient, *, match_order: Sequence[MatchRule] = DEFAULT_MATCH_ORDER
    ) -> None:
        self._client = client
        self.match_order: tuple[MatchRule, ...] = tuple(match_order)
        self.instance = f"{self.name}:{client.base_url}"
        self._own_book = RecordBook(self.instance)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def apply(
        self, ops: Sequence[CrmOperation], book: RecordBook | None = None
    ) -> list[OpResult]:
        """Write ``ops`` merged per record, group after group, ``max_batch`` records per
        call; one result per operation (see the module docstring). Without a ``book`` the
        connector keeps its own in memory (for callers without a store)."""
        if book is None:
            if len(self._own_book) > _OWN_BOOK_MAX:
                self._own_book = RecordBook(self.instance)
            book = self._own_book
        plan: RecordPlan[G, V] = RecordPlan(self.groups)
        call: WriteCall[G, V] = WriteCall(book, plan, ops)
        for index, op in enumerate(ops):
            try:
                plan.add(index, self._translate(op))
            except PermanentError as exc:
                call.op_errors[index] = exc
        for group in self.groups:
            await self._write_group(call, group)
        await self._after(call)
        call.settle()
        where = {group: f"upsert {self._object_type(group)}" for group in self.groups}
        return call.results(self.errors, where)

    # --- one group --------------------------------------------------------------------
    async def _write_group(self, call: WriteCall[G, V], group: G) -> None:
        records = []
        for record in call.plan.records(group):
            blocked = self._blocked_by(call, group, record)
            if blocked is None:
                records.append(record)
            else:
                call.refuse(group, record.key, blocked)
        if not records:
            return
        await self._discover(call, group, records)
        pending: list[tuple[Record[V], Mapping[str, V]]] = []
        for record in records:
            target = call.targets[(group, record.key)]
            if any(link in call.forgotten for link in self._links(group, record)):
                # a record it links to was made anew: send the link (all of it) again
                target = call.targets[(group, record.key)] = replace(target, written={})
            values = self._outgoing(record, target)
            if values is None:
                call.unchanged(group, record, target)
            else:
                pending.append((record, values))
        retries = await self._send(call, group, pending)
        if retries:
            await self._recover(call, group, retries)

    def _blocked_by(self, call: WriteCall[G, V], group: G, record: Record[V]) -> Refusal | None:
        """The refusal of a record ``record`` links to, which it cannot be written without."""
        for link_group, key in self._links(group, record):
            refusal = call.refused.get((link_group, key))
            if refusal is not None:
                what = f"not written: its {self._object_type(link_group)} was refused"
                return Refusal(refusal.status, refusal.body, what)
        return None

    def _links(self, group: G, record: Record[V]) -> list[tuple[G, str]]:
        """The records ``record`` needs: a case its contact, a note its contact and case."""
        if group == self.contact_group:
            return []
        wanted: list[tuple[G, str | None]] = [(self.contact_group, record.contact_key)]
        if group != self.case_group:
            wanted.append((self.case_group, record.case_key))
        return [(g, key) for g, key in wanted if key is not None]

    async def _discover(self, call: WriteCall[G, V], group: G, records: list[Record[V]]) -> None:
        """What is known of each record: the book's entry, else one lookup for the group."""
        unknown: list[Record[V]] = []
        for record in records:
            known = call.book.get(group, record.key)
            if known is None or (group, record.key) in call.forgotten:
                unknown.append(record)
            else:
                call.targets[(group, record.key)] = _Target.of(known)
        if group == self.contact_group and unknown:
            await self._match(call, group, unknown)
            return
        wanting = [r for r in unknown if r.wants_existing()]
        found: dict[str, Candidate] = {}
        if wanting:
            found = await self._lookup(group, [r.key for r in wanting], _if_empty(wanting))
        for record in unknown:
            candidate = found.get(record.key)
            call.targets[(group, record.key)] = (
                NEW if candidate is None else _Target(candidate.crm_id, "key", _filled(candidate))
            )

    async def _match(self, call: WriteCall[G, V], group: G, records: list[Record[V]]) -> None:
        """One lookup for the batch's unknown contacts; each adopts its best candidate."""
        candidates = await self._find_contacts(records, _if_empty(records))
        taken: set[str] = set()
        for record in records:
            choice = choose(record.key, record.facts, candidates, self.match_order, taken)
            slot = (group, record.key)
            if choice is None:
                call.targets[slot] = NEW
                continue
            found = choice.candidate
            if choice.rule == "key":
                call.targets[slot] = _Target(found.crm_id, "key", _filled(found))
                continue
            taken.add(found.crm_id)
            call.targets[slot] = _Target(found.crm_id, choice.rule, _filled(found), by_id=True)
            call.matches.append((group, record.key, choice.rule, choice.candidates))

    @staticmethod
    def _outgoing(record: Record[V], target: _Target) -> dict[str, V] | None:
        """The values to send (None: nothing to write)."""
        if target.crm_id is None:
            return record.created_values()
        out: dict[str, V] = {}
        for name, value in record.values.items():
            mode = record.mode(name)
            if mode == "on_create":
                continue
            if mode == "if_empty" and (name in target.filled or name in target.written):
                continue
            if target.written.get(name) == value_hash(value):
                continue
            out[name] = value
        return out if out or target.by_id else None

    async def _send(
        self,
        call: WriteCall[G, V],
        group: G,
        pending: Sequence[tuple[Record[V], Mapping[str, V]]],
    ) -> list[tuple[Record[V], Mapping[str, V], Retry]]:
        """Write ``pending``: adopted records by id, the others by key; the ones to retry."""
        retries: list[tuple[Record[V], Mapping[str, V], Retry]] = []
        adopted = [(r, v) for r, v in pending if call.targets[(group, r.key)].by_id]
        keyed = [(r, v) for r, v in pending if not call.targets[(group, r.key)].by_id]
        for start in range(0, len(adopted), self.max_batch):
            chunk = adopted[start : start + self.max_batch]
            items = [(r, call.targets[(group, r.key)].crm_id or "", v) for r, v in chunk]
            answer = await self._update(group, items)
            retries += self._settle_chunk(call, group, chunk, answer)
        for start in range(0, len(keyed), self.max_batch):
            chunk = keyed[start : start + self.max_batch]
            answer = await self._upsert(group, [r for r, _ in chunk], [v for _, v in chunk])
            retries += self._settle_chunk(call, group, chunk, answer)
        return retries

    def _settle_chunk(
        self,
        call: WriteCall[G, V],
        group: G,
        chunk: Sequence[tuple[Record[V], Mapping[str, V]]],
        answer: Upserted[V],
    ) -> list[tuple[Record[V], Mapping[str, V], Retry]]:
        refused = {id(record): body for record, body in answer.refused}
        retries: list[tuple[Record[V], Mapping[str, V], Retry]] = []
        missing = 0
        for record, values in chunk:
            target = call.targets[(group, record.key)]
            if id(record) in refused:
                body = refused[id(record)]
                existed = target.crm_id is not None
                if target.by_id or (existed and self._wants_create(body)):
                    retries.append((record, values, "create"))  # gone from the CRM
                elif self._missing_link(body) and self._links(group, record):
                    retries.append((record, values, "links"))
                else:
                    call.refuse(group, record.key, Refusal(400, body, ""))
                continue
            if record.key not in answer.ids:
                missing += 1
                continue
            crm_id, created = answer.ids[record.key]
            if created and target.crm_id is not None:  # it was deleted: made again, in part
                retries.append((record, values, "create"))
                continue
            call.accept(group, record, crm_id, created, values, target)
        if missing:
            where = f"{self.name}: write {self._object_type(group)}"
            raise CrmUnavailable(f"{where} answered no result for {missing}")
        return retries

    async def _recover(
        self,
        call: WriteCall[G, V],
        group: G,
        retries: Sequence[tuple[Record[V], Mapping[str, V], Retry]],
    ) -> None:
        """Write again, once: records the CRM lost in full (as new, by key); records whose
        linked records were lost after those are written again."""
        for record, _, why in retries:
            if why == "links":
                for link_group, key in self._links(group, record):
                    await self.rewrite(call, link_group, key)
        again: list[tuple[Record[V], Mapping[str, V]]] = []
        for record, values, why in retries:
            if why == "create":
                call.forget(group, record.key)
                call.targets[(group, record.key)] = NEW
                again.append((record, record.created_values()))
            else:
                again.append((record, values))
        for start in range(0, len(again), self.max_batch):
            chunk = again[start : start + self.max_batch]
            answer = await self._upsert(group, [r for r, _ in chunk], [v for _, v in chunk])
            refused = {id(record): body for record, body in answer.refused}
            for record, values in chunk:
                target = call.targets[(group, record.key)]
                if record.key in answer.ids:
                    crm_id, created = answer.ids[record.key]
                    call.accept(group, record, crm_id, created, values, target)
                else:
                    body = refused.get(id(record))
                    call.refuse(group, record.key, Refusal(400, body, ""))

    async def rewrite(self, call: WriteCall[G, V], group: G, key: str) -> str | None:
        """Write ``key``'s ``group`` record again in full, by key (once per call): the CRM
        lost it (a user deleted it). Its new id, or None when it cannot be written."""
        slot = (group, key)
        record = call.plan.record(group, key)
        if record is None or slot in call.refused:
            return None
        if slot in call.rewritten:
            return call.id_of(group, key)
        call.rewritten.add(slot)
        call.forget(group, key)
        call.targets[slot] = NEW
        values = record.created_values()
        answer = await self._upsert(group, [record], [values])
        if key in answer.ids:
            crm_id, created = answer.ids[key]
            call.accept(group, record, crm_id, created, values, NEW)
            return crm_id
        body = answer.refused[0][1] if answer.refused else None
        call.refuse(group, key, Refusal(400, body, ""))
        return None

    def _object_type(self, group: G) -> str:
        """The CRM's name for ``group``'s records, for messages (and, often, paths)."""
        return group

    # --- the vendor's translation -----------------------------------------------------
    @abstractmethod
    def _translate(self, op: CrmOperation) -> Write[G, V]:
        """The record ``op`` writes, and with what (raises PermanentError when it cannot)."""

    @abstractmethod
    async def _lookup(
        self, group: G, keys: Sequence[str], names: Sequence[str]
    ) -> dict[str, Candidate]:
        """The existing records of ``keys`` (by our key property), with the current values
        of the fields ``names``."""

    @abstractmethod
    async def _find_contacts(
        self, records: Sequence[Record[V]], names: Sequence[str]
    ) -> list[Candidate]:
        """Existing contacts that may be ``records``' (by our key, by any form of their
        phone, by e-mail, as :attr:`match_order` asks), with the current values of the
        fields ``names``: one lookup for the batch, split only where the CRM's limits say."""

    @abstractmethod
    async def _upsert(
        self, group: G, chunk: Sequence[Record[V]], values: Sequence[Mapping[str, V]]
    ) -> Upserted[V]:
        """Upsert ``chunk`` (at most ``max_batch`` records) by our key with ``values``."""

    @abstractmethod
    async def _update(
        self, group: G, items: Sequence[tuple[Record[V], str, Mapping[str, V]]]
    ) -> Upserted[V]:
        """Write (record, CRM id, values) by id, our key property included: the records
        adopted from the CRM's own."""

    def _wants_create(self, body: Any) -> bool:
        """True when a refusal of a record we believed existing says it must be created
        (the CRM lost it: a required field is missing)."""
        return False

    def _missing_link(self, body: Any) -> bool:
        """True when a refusal says a record this one links to does not exist."""
        return False

    async def _after(self, call: WriteCall[G, V]) -> None:
        """Run after every group is written (e.g. link records); nothing by default."""


def _if_empty(records: Sequence[Record[Any]]) -> list[str]:
    """The ``if_empty`` fields of ``records``: a lookup reads their current values."""
    return sorted({name for r in records for name, mode in r.modes.items() if mode == "if_empty"})


def _filled(candidate: Candidate) -> frozenset[str]:
    return frozenset(name for name, value in candidate.values.items() if not _empty(value))
