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
   equals the one last written (a record with nothing left costs no request); a record
   new to the book is created with its links inline where the vendor allows
   (:attr:`RecordConnector.creates_linked`), else upserted by key;
4. refusals become :class:`~wa_bridge.connectors.base.OpRejected` for the record's
   operations, and for those of records linked to it; a record the CRM lost (deleted by a
   user) is written again in full under our key, once, not refused;
5. the book learns the ids, the filled fields and the hashes of what was written.

A vendor that takes several upserts in one request (:attr:`RecordConnector.
upserts_per_request`, Salesforce's Composite) gets steps 1–3 for every group first, then
all the upserts by key together, then step 4 group after group (:meth:`RecordConnector.
_write_together`); a record sent before its link was refused is refused with it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final, Generic, Literal, TypeVar

import httpx

from wa_bridge.connectors._call import NEW, Refusal, Target, Upserted, WriteCall, is_empty
from wa_bridge.connectors._matching import Candidate, choose
from wa_bridge.connectors._plan import (
    G,
    MatchFacts,
    Record,
    RecordPlan,
    V,
    Write,
    case_status,
    case_statuses,
    deal_stage,
    is_status_only,
    json_value,
    modes_of,
    require_key,
)
from wa_bridge.connectors.base import OpResult, note_key
from wa_bridge.connectors.http import ErrorDialect
from wa_bridge.errors import CrmUnavailable, PermanentError
from wa_bridge.normalize.phone_forms import same_number
from wa_bridge.operations import DEFAULT_MATCH_ORDER, CrmOperation, MatchRule
from wa_bridge.store.book import RecordBook, value_hash

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
    "case_statuses",
    "deal_stage",
    "is_status_only",
    "json_value",
    "modes_of",
    "note_key",
    "require_key",
]

Opts = TypeVar("Opts")  # a vendor's options

_OWN_BOOK_MAX: Final = 50_000  # records a connector remembers when no book is given
Retry = Literal["create", "links"]
T = TypeVar("T")
_Chunk = Sequence[tuple[Record[V], Mapping[str, V]]]  # records to write, with their values
_Retry = tuple[Record[V], Mapping[str, V], Retry]  # one to write again, and why


class RecordConnector(ABC, Generic[G, V, Opts]):
    """A :class:`~wa_bridge.connectors.base.CrmConnector` that writes records by our keys.

    Owns ``client`` (closed by :meth:`aclose`). Raises only :mod:`wa_bridge.errors`.
    Subclasses set ``name``, ``max_batch`` (records per write call), ``groups`` (record
    groups in write order: contacts, cases, notes), ``contact_group``, ``case_group``,
    ``errors`` (the vendor's dialect) and ``default_options`` (the vendor's options when
    none are given); :meth:`_configure` derives what they need from ``options``.
    """

    name: str
    max_batch: int
    groups: tuple[G, ...]
    contact_group: G
    case_group: G
    errors: ErrorDialect
    default_options: Callable[[], Opts]
    # groups whose records new to the book are created with their links inline
    # (:meth:`_create`); the others are always upserted by key
    creates_linked: frozenset[str] = frozenset()
    # upsert chunks (of any groups) one request may carry: above 1, the groups' upserts
    # by key go together (:meth:`_write_together`, :meth:`_upsert_together`)
    upserts_per_request: int = 1
    # contact fields of the CRM's own that wa-bridge fills, and what they hold (a phone,
    # an e-mail): on a record it adopted, one that held something else is the company's
    # (written only where empty; :meth:`_adopted_modes`)
    company_fields: tuple[tuple[str, Literal["phone", "email"]], ...] = ()

    def __init__(
        self,
        client: httpx.AsyncClient,
        options: Opts | None = None,
        *,
        match_order: Sequence[MatchRule] = DEFAULT_MATCH_ORDER,
        instance: str | None = None,
    ) -> None:
        self.options: Opts = options if options is not None else self.default_options()
        self._client = client
        self.match_order: tuple[MatchRule, ...] = tuple(match_order)
        # The CRM instance (crm_records' scope): the factory passes the quota key, which
        # names the account even when OAuth sends every org's requests from one login URL.
        self.instance = instance or f"{self.name}:{client.base_url}"
        self._own_book = RecordBook(self.instance)
        self._configure()

    def _configure(self) -> None:
        """Derive the vendor's paths and names from ``self.options`` (nothing by default)."""

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
        if self.upserts_per_request > 1:
            await self._write_together(call)
        else:
            for group in self.groups:
                await self._write_group(call, group)
        await self._after(call)
        call.settle()
        where = {group: f"upsert {self._object_type(group)}" for group in self.groups}
        return call.results(self.errors, where)

    # --- one group --------------------------------------------------------------------
    async def _write_group(self, call: WriteCall[G, V], group: G) -> None:
        keyed, retries = await self._send_direct(call, group, await self._prepare(call, group))
        retries += await self._upsert_by_key(call, group, keyed)
        if retries:
            await self._recover(call, group, retries)

    async def _upsert_by_key(
        self, call: WriteCall[G, V], group: G, items: _Chunk[V]
    ) -> list[_Retry[V]]:
        """Upsert ``items`` by our key, ``max_batch`` a request; the ones to retry."""
        retries: list[_Retry[V]] = []
        for chunk in _chunks(items, self.max_batch):
            answer = await self._upsert(group, [r for r, _ in chunk], [v for _, v in chunk])
            retries += self._settle_chunk(call, group, chunk, answer)
        return retries

    async def _write_together(self, call: WriteCall[G, V]) -> None:
        """Every group's upserts by key in as few requests as the vendor takes
        (:attr:`upserts_per_request` chunks each, in group order), then each group settled
        in turn. A record is sent before the outcome of the records it links to is known:
        one the CRM refused for a link it refused is refused as in :meth:`_write_group`;
        one written although its link was made anew gets its links again
        (:meth:`_relink`)."""
        staged: list[tuple[G, list[_Chunk[V]], list[_Retry[V]]]] = []
        for group in self.groups:
            keyed, retries = await self._send_direct(call, group, await self._prepare(call, group))
            staged.append((group, list(_chunks(keyed, self.max_batch)), retries))
        parts = [(group, chunk) for group, chunks, _ in staged for chunk in chunks]
        answers: list[Upserted[V]] = []
        for start in range(0, len(parts), self.upserts_per_request):
            together = parts[start : start + self.upserts_per_request]
            answers += await self._upsert_together(
                [(g, [r for r, _ in c], [v for _, v in c]) for g, c in together]
            )
        answer_of = iter(answers)
        for group, chunks, retries in staged:
            for chunk in chunks:
                retries += self._settle_chunk(call, group, chunk, next(answer_of))
            if retries:
                await self._recover(call, group, retries)
            await self._relink(call, group, [r for chunk in chunks for r, _ in chunk])

    async def _relink(self, call: WriteCall[G, V], group: G, sent: Sequence[Record[V]]) -> None:
        """Write again, by key, the links (and all else) of the records of ``sent`` that
        were written while a record they link to was made anew (a user deleted it)."""
        again: list[tuple[Record[V], Mapping[str, V]]] = []
        for record in sent:
            slot = (group, record.key)
            if slot not in call.learned or slot in call.rewritten:
                continue
            if any(link in call.forgotten for link in self._links(group, record)):
                target = replace(Target.of(call.learned[slot]), written={})
                values = self._outgoing(record, target)
                if values is not None:
                    call.targets[slot] = target
                    again.append((record, values))
        retries = await self._upsert_by_key(call, group, again)
        if retries:
            await self._recover(call, group, retries)

    async def _prepare(
        self, call: WriteCall[G, V], group: G
    ) -> list[tuple[Record[V], Mapping[str, V]]]:
        """``group``'s records to write, with their values: none blocked by a refused
        link, none holding what we would send (those are settled as unchanged)."""
        records = []
        for record in call.plan.records(group):
            blocked = self._blocked_by(call, group, record)
            if blocked is None:
                records.append(record)
            else:
                call.refuse(group, record.key, blocked)
        if not records:
            return []
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
        return pending

    def _blocked_by(self, call: WriteCall[G, V], group: G, record: Record[V]) -> Refusal | None:
        """The refusal of a record ``record`` links to, which it cannot be written without."""
        for link_group, key in self._links(group, record):
            refusal = call.refused.get((link_group, key))
            if refusal is not None:
                what = (
                    f"not written: the {self._object_type(link_group)} record it needs was refused"
                )
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
                call.targets[(group, record.key)] = Target.of(known)
                self._adopted_modes(group, record, call.targets[(group, record.key)])
        new = {id(r) for r in unknown}
        await self._read_unsure(call, group, [r for r in records if id(r) not in new])
        if group == self.contact_group and unknown:
            await self._match(call, group, unknown)
            return
        wanting = [r for r in unknown if r.wants_existing()]
        found: dict[str, Candidate] = {}
        if wanting:
            found = await self._lookup(group, [r.key for r in wanting], _ifis_empty(wanting))
        for record in unknown:
            candidate = found.get(record.key)
            call.targets[(group, record.key)] = (
                NEW if candidate is None else Target(candidate.crm_id, "key", _filled(candidate))
            )

    async def _read_unsure(
        self, call: WriteCall[G, V], group: G, records: Sequence[Record[V]]
    ) -> None:
        """Known records about to get an ``if_empty`` value we never wrote nor saw filled,
        or where we wrote only the CRM's placeholder (a Contact's default ``LastName``):
        one read of those fields, as someone may have filled them in the CRM since (an
        agent who named a contact that a template's statuses created without a name). A
        field still empty, or still holding our placeholder, takes the value."""
        unsure = [r for r in records if _unsure(r, call.targets[(group, r.key)])]
        if not unsure:
            return
        found = await self._lookup(group, [r.key for r in unsure], _ifis_empty(unsure))
        for record in unsure:
            slot = (group, record.key)
            target, candidate = call.targets[slot], found.get(record.key)
            if candidate is None or candidate.crm_id != target.crm_id:
                continue
            filled, written = set(target.filled), dict(target.written)
            for name, current in candidate.values.items():
                placeholder = name in record.defaults and current == record.defaults[name]
                if is_empty(current) or placeholder:
                    filled.discard(name)
                    written.pop(name, None)
                else:
                    filled.add(name)
            call.targets[slot] = replace(target, filled=frozenset(filled), written=written)

    async def _match(self, call: WriteCall[G, V], group: G, records: list[Record[V]]) -> None:
        """One lookup for the batch's unknown contacts; each adopts its best candidate."""
        names = sorted({*_ifis_empty(records), *(name for name, _ in self.company_fields)})
        candidates = await self._find_contacts(records, names)
        taken: set[str] = set()
        for record in records:
            choice = choose(record.key, record.facts, candidates, self.match_order, taken)
            slot = (group, record.key)
            if choice is None:
                call.targets[slot] = NEW
                continue
            found = choice.candidate
            if choice.rule == "key":
                call.targets[slot] = Target(found.crm_id, "key", _filled(found))
                continue
            taken.add(found.crm_id)
            call.targets[slot] = Target(found.crm_id, choice.rule, _filled(found), by_id=True)
            self._adopted_modes(group, record, call.targets[slot], found.values)
            call.matches.append((group, record.key, choice))

    def _adopted_modes(
        self, group: G, record: Record[V], target: Target, held: Mapping[str, Any] | None = None
    ) -> None:
        """On a contact the company had before wa-bridge (adopted by phone or e-mail), a
        field of :attr:`company_fields` is ours when it holds the person's number or
        e-mail (``held``: at adoption) or we wrote it since: kept up to date (a number
        change). Another value there (an office line), or the number with more than the
        number (an extension, a remark), is the company's: the field is written
        ``if_empty``, so it stays."""
        if group != self.contact_group or target.match not in ("phone", "email"):
            return
        for name, kind in self.company_fields:
            value = record.values.get(name)
            if value is None or record.mode(name) != "always" or name in target.written:
                continue
            if held is not None and _same(kind, held.get(name), value):
                continue
            record.modes[name] = "if_empty"

    @staticmethod
    def _outgoing(record: Record[V], target: Target) -> dict[str, V] | None:
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
        if record.together & out.keys():
            out |= {n: record.values[n] for n in record.together if n in record.values}
        return out if out or target.by_id else None

    async def _send_direct(
        self,
        call: WriteCall[G, V],
        group: G,
        pending: Sequence[tuple[Record[V], Mapping[str, V]]],
    ) -> tuple[list[tuple[Record[V], Mapping[str, V]]], list[_Retry[V]]]:
        """Write what of ``pending`` is not upserted by key: adopted records by id, new
        ones with their links (:attr:`creates_linked`). The rest, to upsert by key, and
        the ones to retry."""
        retries: list[_Retry[V]] = []
        adopted = [(r, v) for r, v in pending if call.targets[(group, r.key)].by_id]
        keyed = [(r, v) for r, v in pending if not call.targets[(group, r.key)].by_id]
        for start in range(0, len(adopted), self.max_batch):
            chunk = adopted[start : start + self.max_batch]
            items = [(r, call.targets[(group, r.key)].crm_id or "", v) for r, v in chunk]
            answer = await self._update(group, items)
            retries += self._settle_chunk(call, group, chunk, answer)
        if group in self.creates_linked:
            fresh = [(r, v) for r, v in keyed if call.targets[(group, r.key)].crm_id is None]
            keyed = [(r, v) for r, v in keyed if call.targets[(group, r.key)].crm_id is not None]
            for start in range(0, len(fresh), self.max_batch):
                chunk = fresh[start : start + self.max_batch]
                made = await self._create(call, group, chunk)
                done = [(r, v) for r, v in chunk if r.key in made.ids]
                retries += self._settle_chunk(call, group, done, Upserted(ids=made.ids))
                keyed += [(r, v) for r, v in chunk if r.key not in made.ids]
        return keyed, retries

    def _settle_chunk(
        self,
        call: WriteCall[G, V],
        group: G,
        chunk: Sequence[tuple[Record[V], Mapping[str, V]]],
        answer: Upserted[V],
    ) -> list[_Retry[V]]:
        refused = {id(record): body for record, body in answer.refused}
        retries: list[_Retry[V]] = []
        missing = 0
        for record, values in chunk:
            target = call.targets[(group, record.key)]
            if id(record) in refused:
                body = refused[id(record)]
                blocked = self._blocked_by(call, group, record)
                if blocked is not None:  # sent with a link the CRM refused (together)
                    call.refuse(group, record.key, blocked)
                    continue
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
        retries: Sequence[_Retry[V]],
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

    async def _create(
        self,
        call: WriteCall[G, V],
        group: G,
        chunk: Sequence[tuple[Record[V], Mapping[str, V]]],
    ) -> Upserted[V]:
        """Create ``chunk`` (records new to the book, at most ``max_batch``) under our key,
        linked inline to the records of :meth:`_links` whose ids are known, and add those
        links to ``call.linked``. Only the created records are in the answer's ``ids``:
        any other (it exists already: an earlier attempt made it; or refused) is then
        upserted by key as usual, so a create costs no idempotency. Only for the groups of
        :attr:`creates_linked`."""
        raise NotImplementedError(f"{self.name} creates no record with its links")

    def _wants_create(self, body: Any) -> bool:
        """True when a refusal of a record we believed existing says it must be created
        (the CRM lost it: a required field is missing)."""
        return False

    def _missing_link(self, body: Any) -> bool:
        """True when a refusal says a record this one links to does not exist."""
        return False

    async def _upsert_together(
        self, parts: Sequence[tuple[G, Sequence[Record[V]], Sequence[Mapping[str, V]]]]
    ) -> list[Upserted[V]]:
        """Upsert several chunks (of one group or several, at most
        :attr:`upserts_per_request`) in one request, in order; one answer per chunk. Only
        for vendors whose :attr:`upserts_per_request` is above 1."""
        raise NotImplementedError(f"{self.name} sends one upsert per request")

    async def _after(self, call: WriteCall[G, V]) -> None:
        """Run after every group is written (e.g. link records); nothing by default."""


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ifis_empty(records: Sequence[Record[Any]]) -> list[str]:
    """The ``if_empty`` fields of ``records``: a lookup reads their current values."""
    return sorted({name for r in records for name, mode in r.modes.items() if mode == "if_empty"})


def _same(kind: Literal["phone", "email"], stored: Any, value: Any) -> bool:
    """True when a CRM field's ``stored`` text is ``value`` (our E.164 or e-mail) and
    nothing more (:func:`~wa_bridge.normalize.phone_forms.same_number`)."""
    if not isinstance(stored, str) or not isinstance(value, str) or not stored.strip():
        return False
    if kind == "phone":
        return same_number(stored, value)
    return stored.strip().lower() == value.strip().lower()


def _unsure(record: Record[Any], target: Target) -> bool:
    """True when ``record`` sends an ``if_empty`` value the existing ``target`` may hold:
    one we never wrote nor saw filled, or one where we wrote only the placeholder."""

    def placeholder(name: str) -> bool:
        return name in record.defaults and target.written.get(name) == value_hash(
            record.defaults[name]
        )

    return target.crm_id is not None and any(
        mode == "if_empty"
        and name in record.values
        and name not in target.filled
        and (name not in target.written or placeholder(name))
        for name, mode in record.modes.items()
    )


def _filled(candidate: Candidate) -> frozenset[str]:
    return frozenset(name for name, value in candidate.values.items() if not is_empty(value))
