"""The one seam between wa-bridge and a CRM.

A connector applies batches of typed :class:`~wa_bridge.operations.CrmOperation` values
with :meth:`CrmConnector.apply` and answers one :data:`OpResult` per operation, in order:
a :class:`CrmResult` (the record's CRM id) or an :class:`OpRejected` (the CRM refused that
operation's record; the worker dead-letters its event with the CRM's message and commits
the rest). A failure of the whole call raises an error of :mod:`wa_bridge.errors`:
``RetryableError`` subclasses (timeouts, 429, 5xx; with ``retry_after_s`` when the CRM said
so) or ``PermanentError`` subclasses (``CrmRejected`` for a refused token…). Applying is
idempotent on the operation's keys (``contact_key``, ``case_key``, the note key), so a
redelivered event never creates a second record.

The worker hands every call the batch's :class:`~wa_bridge.store.book.RecordBook` (what we
know of the CRM's records: ids, how we came to own them, what we wrote), loaded from
``crm_records`` for :func:`book_keys`; the connector updates it, the worker saves it with
the batch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.errors import PermanentError
from wa_bridge.operations import DEFAULT_MATCH_ORDER, CrmOperation, MatchRule
from wa_bridge.slot_init import slot_init
from wa_bridge.store.book import RecordBook

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from wa_bridge.connectors.merging import ContactMerger
    from wa_bridge.settings import Settings

__all__ = [
    "CrmConnector",
    "CrmResult",
    "OpRejected",
    "OpResult",
    "RecordBook",
    "SetupResult",
    "Vendor",
    "Wiring",
    "book_keys",
    "note_key",
    "nothing_to_set_up",
]


@slot_init
@dataclass(frozen=True, slots=True)
class CrmResult:
    """What the CRM answered for one operation: its own record id, and whether it is new."""

    crm_id: str
    created: bool = False


@dataclass(frozen=True, slots=True)
class OpRejected:
    """The CRM refused this operation's record while the call itself succeeded (a HubSpot
    207 item, a Salesforce ``success: false`` record, a REST item status 4xx); ``error``
    carries the CRM's own message (``CrmRejected.crm_error``)."""

    error: PermanentError


OpResult = CrmResult | OpRejected


def note_key(op: CrmOperation) -> str:
    """A note's key: its message id (so a status updates the message's note), else the
    operation's idempotency key."""
    message_id = op.fields.get("message_id")
    return str(message_id) if message_id else op.idempotency_key


def book_keys(ops: Sequence[CrmOperation]) -> list[str]:
    """Every key a record of ``ops`` may be kept under in the book (contact, case and note
    keys, the idempotency key of the rest), sorted, once each."""
    keys: set[str] = set()
    for op in ops:
        keys.update(k for k in (op.contact_key, op.case_key) if k)
        keys.add(note_key(op) if op.kind == "add_note" else op.idempotency_key)
    return sorted(keys)


@runtime_checkable
class CrmConnector(Protocol):
    """What the worker needs of every CRM connector (sql, rest, hubspot, salesforce).

    The SQL CRM also writes inside the worker's store transaction (``apply_in``, the
    worker's ``TxConnector``) and needs no book: its tables are the store.
    """

    name: str
    instance: str  # the CRM instance its records belong to: the book's (crm_records') scope
    max_batch: int  # largest number of records the CRM takes in one call

    async def apply(self, ops: Sequence[CrmOperation], book: RecordBook) -> list[OpResult]:
        """Apply ``ops`` in order, batching where the CRM can; one result per operation.

        A record the CRM refuses is an :class:`OpRejected` for each of its operations
        (and for those of records that depend on it: a note of a refused contact).
        Anything that fails the whole call raises; operations before it may have been
        applied, and since each is idempotent the caller may retry the whole sequence
        (with the book as loaded: a record written under our key is found again).
        """
        ...

    async def aclose(self) -> None:
        """Release the connector's client or engine; it is not used afterwards."""
        ...


@dataclass(frozen=True, slots=True)
class SetupResult:
    """What ``wa-bridge crm setup`` did or found, as lines for the operator.

    ``ok`` is False when something needs the operator's hand (the CLI exits 1).
    """

    lines: tuple[str, ...]
    ok: bool = True


async def nothing_to_set_up(
    settings: Settings, dry_run: bool, engine: AsyncEngine | None
) -> SetupResult:
    """The setup of a CRM that needs none (the SQL CRM, the REST contract)."""
    return SetupResult((f"connector {settings.connector}: nothing to set up",))


@dataclass(frozen=True, slots=True)
class Wiring:
    """What a connector is built with besides the settings: the state database (the
    built-in SQL CRM's tables, the CRM quota), the mapping's ``match:`` order (how to find
    a contact's existing CRM record) and the clock its gate and sign-in wait on."""

    engine: AsyncEngine | None = None
    match_order: tuple[MatchRule, ...] = DEFAULT_MATCH_ORDER
    clock: Clock = SYSTEM_CLOCK


@dataclass(frozen=True, slots=True)
class Vendor:
    """One CRM as the factory sees it: how to build its connector and set the CRM up.

    ``build(settings, wiring)`` raises ConfigError when a setting it needs is missing
    (``wiring.engine`` is the state database: the built-in SQL CRM's tables, and the CRM
    quota every HTTP connector shares); ``set_up(settings, dry_run, engine)`` raises
    :mod:`wa_bridge.errors` errors when the CRM cannot be reached.
    """

    build: Callable[[Settings, Wiring], CrmConnector]
    set_up: Callable[[Settings, bool, AsyncEngine | None], Awaitable[SetupResult]] = (
        nothing_to_set_up
    )
    # How the CRM merges two contacts (wa-bridge identity merge); None: it cannot.
    merger: ContactMerger | None = None
