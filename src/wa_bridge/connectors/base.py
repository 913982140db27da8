"""The one seam between wa-bridge and a CRM.

A connector applies batches of typed :class:`~wa_bridge.operations.CrmOperation` values
with :meth:`CrmConnector.apply`. It raises only errors from :mod:`wa_bridge.errors`:
``RetryableError`` subclasses (timeouts, 429, 5xx; with ``retry_after_s`` when the CRM said
so) or ``PermanentError`` subclasses (``CrmRejected`` with the CRM's own message). Applying
is idempotent on the operation's keys (``contact_key``, ``case_key``, ``idempotency_key``),
so a redelivered event never creates a second record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from wa_bridge.operations import CrmOperation

__all__ = ["CrmConnector", "CrmResult"]


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
