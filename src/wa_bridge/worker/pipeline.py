"""The steps that make a batch of canonical events take effect in the CRM.

One call, one store transaction: ledger claim → mapping → identity changes → contact
resolution → status and conversation bookkeeping (:mod:`wa_bridge.worker.conversations`,
whose case updates are mapped too) → connector → outcomes. For the SQL CRM the
connector writes inside the same transaction (atomic with the ledger: exactly once); for
an HTTP CRM the connector is called before the transaction commits, with the batch's
record book (``crm_records``, saved in the same transaction), and its idempotent upserts
make a crash between the two harmless.

Records the CRM refuses one by one do not fail the batch: the transaction is rolled back
and the batch applied again without the refused events (the connector's writes are
idempotent, and the book carried over says what the CRM holds now, so nothing is written
twice); the refused events come back in :attr:`BatchResult.rejected`, untouched in the
store, for the caller to dead-letter.

Any exception leaves nothing committed; the caller decides what to do by its class. Events
that fail on their own before any CRM call (their mapping, their keys) are named together in
one :class:`EventsRefused`, so the caller dead-letters exactly those and applies the rest
again, without searching the batch for them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol, runtime_checkable

from wa_bridge.connectors.base import CrmConnector, CrmResult, book_keys
from wa_bridge.errors import PermanentError, UnkeyedOperation, UnknownRoute
from wa_bridge.events import CanonicalEvent, Contact
from wa_bridge.operations import CrmOperation
from wa_bridge.store.api import EventOrigin, LedgerOutcome, Store, StoreTx
from wa_bridge.store.book import RecordBook
from wa_bridge.worker import facts
from wa_bridge.worker.account import account_events_of
from wa_bridge.worker.consent import ConsentChange, ConsentOptions, changed_event, consents_of
from wa_bridge.worker.conversations import ConversationOptions, Derived, Figures, observe, track
from wa_bridge.worker.crm_writes import refused_events, with_contacts
from wa_bridge.worker.tracing import batch_facts, count_outcomes

__all__ = [
    "BatchResult",
    "EventMapper",
    "EventsRefused",
    "Pipeline",
    "TxConnector",
    "check_route",
]


class EventMapper(Protocol):
    """A compiled mapping: one event → its CRM operations (raises PermanentError)."""

    def apply(self, event: CanonicalEvent) -> list[CrmOperation]: ...


@runtime_checkable
class TxConnector(Protocol):
    """A connector that writes inside the worker's store transaction (the SQL CRM)."""

    async def apply_in(self, tx: StoreTx, ops: Sequence[CrmOperation]) -> Sequence[CrmResult]: ...


@dataclass(slots=True)
class BatchResult:
    """Ledger outcome per event id of the batch (duplicates are ``noop``), and the events
    the CRM refused record by record (``rejected``: event id → the CRM's error; not
    applied, nothing of them committed: the caller dead-letters exactly them)."""

    outcomes: dict[str, LedgerOutcome] = field(default_factory=dict)
    operations: int = 0
    rejected: dict[str, PermanentError] = field(default_factory=dict)


class _Refused(Exception):
    """Raised inside a batch's transaction to roll it back: the CRM refused the records of
    ``errors``' events. ``book`` holds what the CRM has now, for the batch's next try."""

    def __init__(self, errors: dict[str, PermanentError], book: RecordBook) -> None:
        super().__init__(f"the CRM refused the records of {len(errors)} event(s)")
        self.errors = errors
        self.book = book


class EventsRefused(Exception):
    """Some events of a batch failed on their own, before any CRM call; nothing was
    committed. ``errors`` maps each one's event id to its PermanentError: dead-letter those
    and apply the others again. (A batch of one event raises that event's error instead.)
    """

    def __init__(self, errors: dict[str, PermanentError]) -> None:
        super().__init__(f"{len(errors)} event(s) of the batch refused before any CRM call")
        self.errors = errors


def check_route(event: CanonicalEvent, phone_number_ids: frozenset[str]) -> None:
    """Raise UnknownRoute when the deployment serves a fixed set of numbers and not this one."""
    if not phone_number_ids:
        return
    pnid = facts.phone_number_id_of(event)
    if pnid is not None and pnid not in phone_number_ids:
        raise UnknownRoute(
            f"event {event.id} is for phone_number_id {pnid}, which this deployment does not "
            "serve: add it to WA_BRIDGE_PHONE_NUMBER_IDS or fix the webhook subscription"
        )


# The index of a case update's first operation (its event's own start at 0).
_DERIVED_INDEX: Final = 1000
# The index of a consent change's first operation.
_CONSENT_INDEX: Final = 2000
# Operations whose record is keyed by the event's case (a deal is its case's sale).
_CASE_KEYED: Final = frozenset({"upsert_case", "upsert_deal"})


@dataclass(eq=False, repr=False)
class Pipeline:
    """Applies batches of events; stateless between calls, so safe to share."""

    store: Store
    mapper: EventMapper
    connector: CrmConnector | TxConnector
    _: KW_ONLY
    conversations: ConversationOptions = field(default_factory=ConversationOptions)
    # the mapping's upsert_deal operations reach the CRM only when deals are on
    # (wa_bridge.connectors.deals_enabled); else they are left out
    deals: bool = False
    # consent keywords: none unless configured
    consent: ConsentOptions = field(default_factory=ConsentOptions)

    async def apply(
        self,
        events: Sequence[CanonicalEvent],
        *,
        use_ledger: bool = True,
        origins: Mapping[str, EventOrigin] | None = None,
    ) -> BatchResult:
        """Apply ``events`` (in order) in one transaction; return each one's outcome.

        With ``use_ledger`` false (replay) every event is applied even if the ledger knows
        it; its outcome is then recorded as ``replayed``. Events whose records the CRM
        refused are left out and returned in ``rejected`` (see the module docstring).
        ``origins`` (event id → where it was consumed) goes into each event's trace.
        Raises whatever a step raised; nothing is committed then.
        """
        rejected: dict[str, PermanentError] = {}
        book: RecordBook | None = None
        while True:
            todo = [event for event in events if event.id not in rejected]
            try:
                result = await self._apply_once(todo, use_ledger, book, origins)
            except _Refused as refused:
                fresh = {k: v for k, v in refused.errors.items() if k not in rejected}
                if not fresh:  # refused for events already left out: cannot happen
                    raise next(iter(refused.errors.values())) from refused
                rejected.update(fresh)
                book = refused.book
                continue
            result.rejected = rejected
            return result

    async def _apply_once(
        self,
        events: Sequence[CanonicalEvent],
        use_ledger: bool,
        book: RecordBook | None,
        origins: Mapping[str, EventOrigin] | None,
    ) -> BatchResult:
        """One try of :meth:`apply`; raises ``_Refused`` when the CRM refused records."""
        result = BatchResult()
        figures = Figures()
        try:
            async with self.store.transaction() as tx:
                todo = await self._claim(tx, events, use_ledger, result)
                ops = await self._operations(tx, todo, result, figures)
                written_ops, crm_results = (
                    await self._write(tx, ops, todo, book) if ops else ([], None)
                )
                result.operations = len(ops)
                fresh: LedgerOutcome = "applied" if use_ledger else "replayed"
                for event in todo:
                    result.outcomes.setdefault(event.id, fresh)
                claimed = [(event.id, result.outcomes[event.id]) for event in todo]
                if claimed:
                    await tx.set_outcomes(claimed)
                    # ops hook (wa_bridge.worker.tracing): traces + account signals, same tx
                    await tx.record_traces(
                        *batch_facts(todo, result.outcomes, written_ops, crm_results, origins)
                    )
                    notices = account_events_of(todo)  # wa-bridge account events
                    if notices:
                        await tx.record_account_events(notices)
        except EventsRefused as refused:
            if len(events) == 1:  # replay, or a batch of one: its own error, as it is
                raise next(iter(refused.errors.values())) from None
            raise
        count_outcomes(events, result.outcomes)  # ops hook: committed outcomes by type
        observe(figures)  # the conversations' figures, committed
        return result

    async def _claim(
        self,
        tx: StoreTx,
        events: Sequence[CanonicalEvent],
        use_ledger: bool,
        result: BatchResult,
    ) -> list[CanonicalEvent]:
        unique: dict[str, CanonicalEvent] = {}
        for event in events:
            unique.setdefault(event.id, event)  # the same webhook twice in one batch: once
        if not use_ledger:
            return list(unique.values())
        new_ids = await tx.claim_events(list(unique))
        todo = []
        for event_id, event in unique.items():
            if event_id in new_ids:
                todo.append(event)
            else:
                result.outcomes[event_id] = "noop"
        return todo

    async def _operations(
        self, tx: StoreTx, events: list[CanonicalEvent], result: BatchResult, figures: Figures
    ) -> list[CrmOperation]:
        if not events:
            return []
        mapped = self._map(events)  # pure: refuses bad events before any state changes
        changes = [(e, c) for e in events if (c := facts.identity_change_of(e)) is not None]
        if changes:
            await tx.apply_identity_changes([c for _, c in changes])
        contact_ids = await self._resolve(tx, events)
        # each status event's fact, read once for the three steps that need it
        statuses = {e.id: s for e in events if (s := facts.status_of(e)) is not None}
        seen = await self._seen(tx, statuses)  # before this batch's statuses are recorded
        stale, superseded = await self._statuses(tx, statuses)
        tracked = await track(tx, events, contact_ids, seen, self.conversations, statuses)
        figures.merge(tracked.figures)
        consents = await self._consents(tx, events, contact_ids)
        case_keys = tracked.case_keys
        triggers = {d.trigger_id for d in tracked.derived}
        triggers |= {c.trigger.id for c in consents}
        ops: list[CrmOperation] = []
        refused: dict[str, PermanentError] = {}
        for event, event_ops in zip(events, mapped, strict=True):
            if event.id in stale:
                result.outcomes[event.id] = "stale"
                continue
            if event.id in superseded:
                continue  # applied: a later status of its message in this batch is written
            contact_id = contact_ids.get(event.id)
            case_key = case_keys.get(event.id)
            try:
                _check_keys(event, event_ops, contact_id, case_key)
            except PermanentError as exc:
                refused[event.id] = exc
                continue
            for op in event_ops:
                ops.append(_keyed(op, contact_id or op.contact_key, op.case_key or case_key))
            if not event_ops and event.id not in triggers:
                result.outcomes[event.id] = "noop"
        ops += self._case_updates(tracked.derived, refused)
        ops += self._consent_updates(consents, refused)
        if refused:
            raise EventsRefused(refused)
        if not self.deals:
            ops = [op for op in ops if op.kind != "upsert_deal"]
        return ops

    def _case_updates(
        self, derived: Sequence[Derived], refused: dict[str, PermanentError]
    ) -> list[CrmOperation]:
        """The operations the mapping gives each case update, as operations of the event
        that made the change (a mapping error refuses that event)."""
        ops: list[CrmOperation] = []
        next_index: dict[str, int] = {}
        for update in derived:
            try:
                mapped = self.mapper.apply(update.event)
            except PermanentError as exc:
                refused.setdefault(update.trigger_id, exc)
                continue
            for op in mapped:
                index = next_index.get(update.trigger_id, _DERIVED_INDEX)
                next_index[update.trigger_id] = index + 1
                ops.append(
                    dataclasses.replace(
                        op,
                        event_id=update.trigger_id,
                        index=index,
                        contact_key=update.case.contact_id,
                        case_key=update.case.case_key,
                    )
                )
        return ops

    async def _consents(
        self, tx: StoreTx, events: list[CanonicalEvent], contact_ids: Mapping[str, str]
    ) -> list[ConsentChange]:
        """Append the batch's consent events to the ledger; those that are now their
        contact's current state (the CRM is told of those)."""
        changes = consents_of(events, contact_ids, self.consent, datetime.now(UTC))
        if not changes:
            return []
        current = await tx.record_consents([c.record for c in changes])
        return [c for c, is_current in zip(changes, current, strict=True) if is_current]

    def _consent_updates(
        self, changes: Sequence[ConsentChange], refused: dict[str, PermanentError]
    ) -> list[CrmOperation]:
        """The operations the mapping gives each consent change (``consent.changed``), as
        operations of the event that made it."""
        ops: list[CrmOperation] = []
        for change in changes:
            trigger_id = change.trigger.id
            try:
                mapped = self.mapper.apply(changed_event(change))
            except PermanentError as exc:
                refused.setdefault(trigger_id, exc)
                continue
            ops += [
                dataclasses.replace(
                    op,
                    event_id=trigger_id,
                    index=_CONSENT_INDEX + i,
                    contact_key=change.record.contact_id,
                    case_key=None,
                )
                for i, op in enumerate(mapped)
            ]
        return ops

    def _map(self, events: list[CanonicalEvent]) -> list[list[CrmOperation]]:
        """Each event's operations; raises EventsRefused naming every event whose mapping
        failed (a bug in the mapping code is not a refusal: it propagates)."""
        mapped: list[list[CrmOperation]] = []
        refused: dict[str, PermanentError] = {}
        for event in events:
            try:
                mapped.append(self.mapper.apply(event))
            except PermanentError as exc:
                refused[event.id] = exc
                mapped.append([])
        if refused:
            raise EventsRefused(refused)
        return mapped

    async def _resolve(self, tx: StoreTx, events: list[CanonicalEvent]) -> dict[str, str]:
        items: list[tuple[str, Contact]] = []
        owners: list[str] = []
        for event in events:
            contact = facts.contact_of(event)
            if contact is not None:
                items.append((facts.business_of(event), contact))
                owners.append(event.id)
        if not items:
            return {}
        resolved = await tx.resolve_contacts(items)
        return {eid: cid for eid, cid in zip(owners, resolved, strict=True) if cid is not None}

    async def _statuses(
        self, tx: StoreTx, facts_by_event: Mapping[str, facts.StatusFact]
    ) -> tuple[set[str], set[str]]:
        """Advance message statuses in order; return the status events that are stale (did
        not move their message forward) and those superseded in this batch (moved it, but
        a later status event of the same message moved it further).

        Coalescing: of several statuses of one message in a batch only the latest is
        written to the CRM (one write instead of sent + delivered + read); each event
        still gets its own ledger outcome (``applied`` or ``stale``).
        ``facts_by_event``: the batch's status events (event id → fact), in order.
        """
        statuses = list(facts_by_event.items())
        if not statuses:
            return set(), set()
        moved = await tx.advance_statuses([(s.message_id, s.status, s.at) for _, s in statuses])
        stale: set[str] = set()
        latest: dict[str, str] = {}  # message id → the last event that moved it
        for (event_id, status), forward in zip(statuses, moved, strict=True):
            if forward:
                latest[status.message_id] = event_id
            else:
                stale.add(event_id)
        kept = set(latest.values())
        superseded = {eid for eid, _ in statuses if eid not in stale and eid not in kept}
        return stale, superseded

    async def _seen(self, tx: StoreTx, facts_by_event: Mapping[str, facts.StatusFact]) -> set[str]:
        """The message ids of the batch's statuses that had a status before it."""
        ids = [s.message_id for s in facts_by_event.values()]
        return await tx.seen_messages(ids) if ids else set()

    async def _write(
        self,
        tx: StoreTx,
        ops: list[CrmOperation],
        events: Sequence[CanonicalEvent],
        carried: RecordBook | None,
    ) -> tuple[list[CrmOperation], list[CrmResult]]:
        """The batch's operations (with the contacts they name) into the CRM; returns the
        operations written and one result each (for the events' traces).

        An HTTP CRM gets the batch's record book (``carried`` from a try the CRM refused
        records of, else loaded in one SELECT), saved here when every record was taken;
        raises ``_Refused`` otherwise.
        """
        ops = with_contacts(ops, events)
        if isinstance(self.connector, TxConnector):
            return ops, list(await self.connector.apply_in(tx, ops))
        book = carried
        if book is None:
            book = await tx.load_records(self.connector.instance, book_keys(ops))
        results = await self.connector.apply(ops, book)
        refused = refused_events(ops, results)
        if refused:
            raise _Refused(refused, book)
        await tx.save_records(book)
        return ops, [r for r in results if isinstance(r, CrmResult)]


_OP_FIELDS: Final = ("kind", "fields", "event_id", "index", "contact_key", "case_key", "source")
if tuple(f.name for f in dataclasses.fields(CrmOperation)) != (*_OP_FIELDS, "write_modes"):
    raise RuntimeError("CrmOperation changed: update pipeline._keyed, which copies its fields")


def _keyed(op: CrmOperation, contact_key: str | None, case_key: str | None) -> CrmOperation:
    """``op`` with these keys (itself when it has them already; a new operation built
    directly, not through ``dataclasses.replace``: this runs once per operation)."""
    if op.contact_key == contact_key and op.case_key == case_key:
        return op
    return CrmOperation(  # positional, in _OP_FIELDS' order (checked at import)
        op.kind,
        op.fields,
        op.event_id,
        op.index,
        contact_key,
        case_key,
        op.source,
        op.write_modes,
    )


def _check_keys(
    event: CanonicalEvent, ops: Sequence[CrmOperation], contact_id: str | None, case_key: str | None
) -> None:
    """Refuse, with the reason, an event whose operations the CRM could not key."""
    if not ops:
        return
    if contact_id is None and all(op.contact_key is None for op in ops):
        raise UnkeyedOperation(
            f"event {event.id} names no contact the CRM can key on (no valid phone number and "
            "no BSUID), so its CRM operations cannot be applied"
        )
    unkeyed = [op.kind for op in ops if op.kind in _CASE_KEYED and op.case_key is None]
    if case_key is None and unkeyed:
        raise UnkeyedOperation(
            f"the mapping emits {unkeyed[0]} for {event.type}, but this event has no case "
            "(cases open on customers' messages and inbox events; echoes and statuses "
            "land on an open case only)"
        )
