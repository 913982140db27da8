"""One write call of a record connector: what is known of each record, how each ended.

:class:`WriteCall` is the state of one :meth:`RecordConnector.apply
<wa_bridge.connectors._records.RecordConnector.apply>`: the plan and the book, each
record's :class:`Target` (what is known of it before it is written), the records written
(with what they now hold: :meth:`WriteCall.accept`) or refused (:class:`Refusal`), and, at
the end, what the book learns (:meth:`WriteCall.settle`) and one result per operation
(:meth:`WriteCall.results`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from wa_bridge.connectors._matching import Choice
from wa_bridge.connectors._plan import Record, RecordPlan
from wa_bridge.connectors.base import CrmResult, OpRejected, OpResult
from wa_bridge.connectors.http import ErrorDialect, item_error
from wa_bridge.errors import CrmUnavailable, PermanentError
from wa_bridge.operations import CrmOperation
from wa_bridge.store.book import KnownRecord, MatchKind, RecordBook, value_hash

__all__ = ["NEW", "Refusal", "Target", "Upserted", "WriteCall", "is_empty"]

G = TypeVar("G", bound=str)  # a vendor's record groups
V = TypeVar("V")  # a vendor's field value type


def is_empty(value: Any) -> bool:
    """No value: None, an empty string or list."""
    return value is None or value == "" or value == []


@dataclass(slots=True)
class Upserted(Generic[V]):
    """A CRM's answer to one write chunk."""

    ids: dict[str, tuple[str, bool]] = field(default_factory=dict)  # key → (CRM id, created)
    refused: list[tuple[Record[V], Any]] = field(default_factory=list)  # record, error body


@dataclass(frozen=True, slots=True)
class Target:
    """What is known of a record before it is written."""

    crm_id: str | None  # None: it is created
    match: MatchKind = "created"
    filled: frozenset[str] = frozenset()
    written: Mapping[str, str] = field(default_factory=dict)
    by_id: bool = False  # adopted: it does not carry our key yet, so it is written by id

    @classmethod
    def of(cls, known: KnownRecord) -> Target:
        return cls(known.crm_id, known.match, known.filled, known.written)


NEW: Final = Target(None)


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
        self.targets: dict[tuple[G, str], Target] = {}
        self.done: dict[tuple[G, str], CrmResult] = {}
        self.refused: dict[tuple[G, str], Refusal] = {}
        self.learned: dict[tuple[G, str], KnownRecord] = {}
        self.forgotten: set[tuple[G, str]] = set()
        self.rewritten: set[tuple[G, str]] = set()
        # links made inline when a record was created: (group, key, linked group, its key)
        self.linked: set[tuple[G, str, G, str]] = set()
        self.matches: list[tuple[G, str, Choice]] = []  # group, key, the record adopted

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

    # --- outcomes ---------------------------------------------------------------------
    def accept(
        self,
        group: G,
        record: Record[V],
        crm_id: str,
        created: bool,
        sent: Mapping[str, V],
        target: Target,
    ) -> None:
        """``record`` was written: remember its id, what it holds now, what we sent."""
        slot = (group, record.key)
        fresh = created or target.crm_id is None or target.crm_id != crm_id
        filled = set() if fresh else set(target.filled)
        filled |= {
            name
            for name, value in sent.items()
            if record.mode(name) == "if_empty" and not is_empty(value)
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

    def unchanged(self, group: G, record: Record[V], target: Target) -> None:
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
        for group, key, choice in self.matches:
            if (group, key) in self.learned:
                self.book.note_match(group, key, choice.rule, choice.candidates, choice.others)

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
