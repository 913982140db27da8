"""The state store as the worker sees it: one transaction, set-based calls per batch.

The worker applies a partition's fetched batch in one transaction (DESIGN.md: ~30x faster
than one transaction per event), so every call here takes a whole batch. Implementations:
``wa_bridge.store.sql`` (PostgreSQL via asyncpg, SQLite via aiosqlite; same SQLAlchemy code).

Every method may raise :class:`wa_bridge.errors.StoreUnavailable` when the database is
unreachable; the worker then retries the batch (nothing has been committed).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

from wa_bridge.events import Contact
from wa_bridge.slot_init import slot_init
from wa_bridge.store.book import RecordBook

if TYPE_CHECKING:
    from wa_bridge.store.consent import ConsentRecord
    from wa_bridge.store.ops import OpsStore
    from wa_bridge.store.retention import PurgeTarget

__all__ = [
    "AccountEvent",
    "AccountEventScope",
    "AccountSignal",
    "CaseRecord",
    "CaseSet",
    "CaseStatus",
    "CloseReason",
    "DeadLetter",
    "DeadLetterFilter",
    "DeadLetterStatus",
    "EventOrigin",
    "EventTrace",
    "FirstTouch",
    "Identifier",
    "IdentifierKind",
    "IdentityChange",
    "LedgerOutcome",
    "NewDeadLetter",
    "Store",
    "StoreTx",
]

LedgerOutcome = Literal["applied", "noop", "stale", "retrying", "dead_lettered", "replayed"]
DeadLetterStatus = Literal["open", "replayed", "discarded"]


IdentifierKind = Literal["phone", "bsuid", "parent_bsuid"]
Identifier = tuple[IdentifierKind, str]  # phones are E.164, BSUIDs as Meta sent them


@dataclass(frozen=True, slots=True)
class IdentityChange:
    """A number or BSUID change notice: the person known by ``previous`` is now known by
    ``current`` (both in ``business``, the BSUIDs' scope; phones are global).

    ``previous`` finds the person; those of its identifiers not in ``current`` become
    history. Every ``current`` identifier links to the person, taken from whoever holds it;
    a current BSUID (or parent BSUID) replaces the person's own of that kind. With
    ``renews_bsuids`` (a number change: Meta regenerates BSUIDs with a new number) the
    person's BSUID and parent BSUID become history unless ``current`` names them. The
    contact keeps its id; nothing is merged.
    """

    business: str
    previous: tuple[Identifier, ...]
    current: tuple[Identifier, ...]
    at: datetime
    renews_bsuids: bool = False


@dataclass(frozen=True, slots=True)
class NewDeadLetter:
    event_id: str
    event_type: str
    contact_key: str | None
    payload: bytes  # the canonical event JSON, exactly as consumed
    error_class: str  # e.g. "CrmRejected", "MappingOutputInvalid", "UnexpectedError"
    error_message: str  # our message (file:line for mapping errors); no PII
    crm_error: str | None  # the CRM's own message, when it gave one
    attempts: int
    failed_at: datetime
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    event_id: str
    event_type: str
    contact_key: str | None
    payload: bytes = field(repr=False)
    error_class: str
    error_message: str
    crm_error: str | None
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    status: DeadLetterStatus
    errors: tuple[str, ...] = ()  # history: one line per failure, oldest first
    message_id: str | None = None  # the wamid the event is about, when it names one
    origin: EventOrigin | None = None  # where it was consumed, when known
    note: str | None = None  # why its status last changed (replayed, discarded by ...)


@slot_init  # one per event and batch (its trace): the faster __init__
@dataclass(frozen=True, slots=True)
class EventOrigin:
    """Where the worker consumed an event: the record's first topic, partition and offset
    (a retried record keeps its origin in headers) and the retry level it was applied at."""

    topic: str
    partition: int
    offset: int
    attempt: int = 0


@slot_init  # one per event and batch
@dataclass(frozen=True, slots=True)
class EventTrace:
    """One event's last step as the worker recorded it (``wa-bridge trace``).

    No personal data: ``contact_hash`` is the keyed hash of the contact key at receipt
    (``wa_bridge.log.hash_key``), ``contact_id`` our own minted id. ``crm_ids`` are the
    CRM's record ids the event's operations wrote, as (operation kind, CRM id).
    """

    event_id: str
    event_type: str
    outcome: LedgerOutcome
    at: datetime | None = None  # when the outcome was recorded (the store stamps it)
    message_id: str | None = None
    contact_id: str | None = None
    contact_hash: str | None = None
    event_time: datetime | None = None
    received_at: datetime | None = None
    origin: EventOrigin | None = None
    crm_ids: tuple[tuple[str, str], ...] = ()


AccountSignalScope = Literal["phone_number", "template"]


@dataclass(frozen=True, slots=True)
class AccountSignal:
    """The latest quality / messaging limit Meta reported for a business number or a
    template (``subject``: phone_number_id or template id; ``label``: a display name)."""

    scope: AccountSignalScope
    subject: str
    at: datetime
    label: str | None = None
    quality: str | None = None  # GREEN | YELLOW | RED | UNKNOWN
    messaging_limit: int | None = None  # business-initiated conversations per day
    event: str | None = None  # Meta's word for the change (UPGRADE, FLAGGED, ...)


AccountEventScope = Literal["template", "phone_number", "account"]


@dataclass(frozen=True, slots=True)
class AccountEvent:
    """One account notice Meta sent, as ``wa-bridge account events`` lists it: a template's
    status, quality or category, a number's quality or messaging limit, an account update.
    ``change`` is Meta's word for it; ``previous`` / ``current`` the values around it."""

    event_id: str
    event_type: str
    scope: AccountEventScope
    at: datetime
    subject: str | None = None  # template id, business number, WABA id
    label: str | None = None  # template name (language), display number
    change: str | None = None
    previous: str | None = None
    current: str | None = None
    detail: str | None = None


CaseStatus = Literal["open", "resolved", "closed"]  # closed: the window lapsed
CloseReason = Literal["resolved", "converted", "lapsed"]


@dataclass(slots=True)
class CaseRecord:
    """One conversation as the worker tracks it (``wa_bridge.worker.conversations``).

    Mutable: the worker changes a batch's copy and saves it with the batch. Times are
    Meta's event times. ``lapses_at`` is when the customer-service window ends (the
    customer's last message, else the opening, plus the window); ``contact_ref`` the
    Kafka key of the contact's latest event, so a check of the window can be sent in order
    with that contact's events.
    """

    case_key: str
    contact_id: str
    business_number: str
    status: CaseStatus
    opened_at: datetime
    closed_at: datetime | None = None
    conversation_id: str | None = None
    contact_ref: str | None = None
    opened_by: str | None = None  # message | inbox
    attribution: dict[str, Any] | None = None
    first_inbound_at: datetime | None = None
    last_inbound_at: datetime | None = None
    lapses_at: datetime | None = None
    handoff_at: datetime | None = None
    first_response_at: datetime | None = None
    frt_s: int | None = None
    close_reason: CloseReason | None = None
    handling_s: int | None = None
    fcr: bool | None = None
    is_repeat: bool | None = None
    outcome: str | None = None
    outcome_value: Decimal | None = None
    outcome_currency: str | None = None
    csat: int | None = None


@dataclass(frozen=True, slots=True)
class CaseSet:
    """What a batch needs of its contacts' cases: per (contact id, business number) how
    many were ever opened (the next key's seed) and the open one; each pair's latest case
    and the cases bound to the inbox conversation ids asked for, by key."""

    counts: dict[tuple[str, str], int]
    cases: dict[str, CaseRecord]


@dataclass(frozen=True, slots=True)
class FirstTouch:
    """A contact's first attributed touch (``data.attribution`` of their message)."""

    contact_id: str
    touch: dict[str, Any]
    at: datetime


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    status: DeadLetterStatus | None = "open"
    error_class: str | None = None
    event_type: str | None = None
    contact_key: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100


class StoreTx(Protocol):
    """One open transaction. Nothing is visible to others until the context exits cleanly."""

    async def claim_events(self, event_ids: Sequence[str]) -> set[str]:
        """Insert ids into the dedup ledger; return those that were NOT there before."""
        ...

    async def set_outcomes(self, outcomes: Sequence[tuple[str, LedgerOutcome]]) -> None:
        """Record each claimed event's outcome (for ops and replay)."""
        ...

    async def resolve_contacts(self, items: Sequence[tuple[str, Contact]]) -> list[str | None]:
        """Map each (business, contact) to its stable contact id, creating and linking.

        Applies the identity-graph rules (DESIGN.md "Contact identity"): identifiers
        carried together are linked; a profile name never links; BSUIDs are scoped by
        business. ``None`` when the contact carries no identifier.
        """
        ...

    async def apply_identity_changes(self, changes: Sequence[IdentityChange]) -> list[str | None]:
        """Apply number/BSUID change notices; return the contact id each one touched."""
        ...

    async def load_cases(
        self, contact_ids: Sequence[str], conversation_ids: Sequence[str] = ()
    ) -> CaseSet:
        """The cases of ``contact_ids`` a batch needs (see :class:`CaseSet`), one SELECT."""
        ...

    async def save_cases(self, cases: Sequence[CaseRecord], new: Sequence[str]) -> None:
        """Insert the cases whose key is in ``new``, update the others (whole rows). A new
        case whose key or open slot another transaction took fails the transaction."""
        ...

    async def seen_messages(self, message_ids: Sequence[str]) -> set[str]:
        """The message ids a status was recorded for before (``advance_statuses``)."""
        ...

    async def first_touches(self, contact_ids: Sequence[str]) -> set[str]:
        """The contacts of ``contact_ids`` that already have a first touch."""
        ...

    async def set_first_touches(self, touches: Sequence[FirstTouch]) -> None:
        """Give each contact its first touch, unless it has one (never overwritten)."""
        ...

    async def record_account_events(self, events: Sequence[AccountEvent]) -> None:
        """Append account notices (an event id already recorded is kept as it was)."""
        ...

    async def record_consents(self, records: Sequence[ConsentRecord]) -> list[bool]:
        """Append consent events to the ledger (an event id already recorded is skipped);
        for each, True when it is now the contact's current state for its channel and
        purpose (no later event in the ledger)."""
        ...

    async def advance_statuses(self, items: Sequence[tuple[str, str, datetime]]) -> list[bool]:
        """For each (message id, status, time): True when it moves the status forward.

        Order: sent < delivered < read < played; failed is terminal. A late ``delivered``
        after ``read`` returns False (the worker skips it as stale).
        """
        ...

    async def add_dead_letters(self, letters: Sequence[NewDeadLetter]) -> list[int]:
        """Insert (or, for an event already dead-lettered, append the failure); return ids."""
        ...

    async def load_records(self, crm: str, keys: Sequence[str]) -> RecordBook:
        """What we know of CRM instance ``crm``'s records of ``keys`` (one SELECT)."""
        ...

    async def save_records(self, book: RecordBook) -> None:
        """Store the changes the connector made to ``book`` (in this transaction)."""
        ...

    async def record_traces(
        self, traces: Sequence[EventTrace], signals: Sequence[AccountSignal] = ()
    ) -> None:
        """Keep each event's trace (a later one for the same event replaces it, keeping
        the origin when the new one has none) and the latest account signals."""
        ...


class Store(Protocol):
    """The state database. Open with ``wa_bridge.store.open_store(url)``."""

    @property
    def ops(self) -> OpsStore:
        """Traces, audit log, alert incidents, heartbeats, replay runs (ops tools)."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[StoreTx]: ...

    async def list_dead_letters(self, flt: DeadLetterFilter) -> list[DeadLetter]: ...

    async def count_dead_letters(self, flt: DeadLetterFilter) -> int:
        """How many dead letters ``flt`` selects (its ``limit`` does not apply)."""
        ...

    async def get_dead_letter(self, dead_letter_id: int) -> DeadLetter | None: ...

    async def set_dead_letter_status(
        self, dead_letter_id: int, status: DeadLetterStatus, *, note: str | None = None
    ) -> None: ...

    async def record_audit(
        self, *, actor: str, role: str, action: str, target: str, detail: str
    ) -> None: ...

    async def account_events(
        self,
        *,
        since: datetime | None = None,
        scope: AccountEventScope | None = None,
        subject: str | None = None,
        limit: int = 100,
    ) -> list[AccountEvent]:
        """The latest ``limit`` account notices matching the filters, oldest first."""
        ...

    async def lapsed_cases(self, at: datetime, limit: int = 1000) -> list[CaseRecord]:
        """Open cases whose window ended before ``at``, the oldest first (for the sweep)."""
        ...

    async def purge_ledger(self, older_than: datetime) -> int:
        """Forget ledger ids first seen before ``older_than``; return how many."""
        ...

    async def purge_dead_letters(self, older_than: datetime) -> int:
        """Delete replayed/discarded dead letters last failed before ``older_than``."""
        ...

    async def purge(self, target: PurgeTarget, older_than: datetime) -> int:
        """Retention: remove ``target``'s rows older than ``older_than`` (see store.retention)."""
        ...

    async def aclose(self) -> None: ...
