"""The one seam between wa-bridge and a CRM.

A connector applies batches of typed :class:`~wa_bridge.operations.CrmOperation` values
with :meth:`CrmConnector.apply`. It raises only errors from :mod:`wa_bridge.errors`:
``RetryableError`` subclasses (timeouts, 429, 5xx; with ``retry_after_s`` when the CRM said
so) or ``PermanentError`` subclasses (``CrmRejected`` with the CRM's own message). Applying
is idempotent on the operation's keys (``contact_key``, ``case_key``, ``idempotency_key``),
so a redelivered event never creates a second record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from wa_bridge.operations import CrmOperation

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from wa_bridge.settings import Settings

__all__ = ["CrmConnector", "CrmResult", "SetupResult", "Vendor", "nothing_to_set_up"]


@dataclass(frozen=True, slots=True)
class CrmResult:
    """What the CRM answered for one operation: its own record id, and whether it is new."""

    crm_id: str
    created: bool = False


@runtime_checkable
class CrmConnector(Protocol):
    """What the worker needs of every CRM connector (sql, rest, hubspot, salesforce).

    The SQL CRM also writes inside the worker's store transaction (``apply_in``, the
    worker's ``TxConnector``).
    """

    name: str
    max_batch: int  # largest number of operations the CRM takes in one call

    async def apply(self, ops: Sequence[CrmOperation]) -> Sequence[CrmResult]:
        """Apply ``ops`` in order, batching where the CRM can; raise on the first failure.

        Operations before the failing one may have been applied; since each is idempotent,
        the caller may retry the whole sequence.
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
class Vendor:
    """One CRM as the factory sees it: how to build its connector and set the CRM up.

    ``build(settings, engine)`` raises ConfigError when a setting it needs is missing
    (``engine`` is the state database: the built-in SQL CRM's tables, and the CRM quota
    every HTTP connector shares); ``set_up(settings, dry_run, engine)`` raises
    :mod:`wa_bridge.errors` errors when the CRM cannot be reached.
    """

    build: Callable[[Settings, AsyncEngine | None], CrmConnector]
    set_up: Callable[[Settings, bool, AsyncEngine | None], Awaitable[SetupResult]] = (
        nothing_to_set_up
    )
