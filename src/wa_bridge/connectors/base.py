"""The one seam between wa-bridge and a CRM.

A connector applies typed :class:`~wa_bridge.operations.CrmOperation` values. It raises
only errors from :mod:`wa_bridge.errors`: ``RetryableError`` subclasses (timeouts, 429,
5xx; with ``retry_after_s`` when the CRM said so) or ``PermanentError`` subclasses
(``CrmRejected`` with the CRM's own message). Every method is idempotent on the
operation's keys (``contact_key``, ``case_key``, ``idempotency_key``), so a redelivered
event never creates a second record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from wa_bridge.operations import CrmOperation

__all__ = ["BatchApplying", "CrmConnector", "CrmResult"]


@dataclass(frozen=True, slots=True)
class CrmResult:
    """What the CRM answered for one operation: its own record id, and whether it is new."""

    crm_id: str
    created: bool = False


@runtime_checkable
class CrmConnector(Protocol):
    """Implemented by every CRM connector (sql, rest, hubspot, ...)."""

    name: str
    max_batch: int  # largest number of operations the CRM takes in one call

    async def upsert_contact(self, op: CrmOperation) -> CrmResult: ...

    async def upsert_case(self, op: CrmOperation) -> CrmResult: ...

    async def add_note(self, op: CrmOperation) -> CrmResult: ...

    async def record_outcome(self, op: CrmOperation) -> CrmResult: ...

    async def set_consent(self, op: CrmOperation) -> CrmResult: ...

    async def apply(self, ops: Sequence[CrmOperation]) -> Sequence[CrmResult]:
        """Apply ``ops`` in order, batching where the CRM can; raise on the first failure.

        Operations before the failing one may have been applied; since each is idempotent,
        the caller may retry the whole sequence.
        """
        ...

    async def aclose(self) -> None: ...


class BatchApplying:
    """For connectors whose one real write path is ``apply``: each single-operation method
    applies a batch of one."""

    async def apply(self, ops: Sequence[CrmOperation]) -> Sequence[CrmResult]:
        raise NotImplementedError

    async def _one(self, op: CrmOperation) -> CrmResult:
        return (await self.apply([op]))[0]

    async def upsert_contact(self, op: CrmOperation) -> CrmResult:
        return await self._one(op)

    async def upsert_case(self, op: CrmOperation) -> CrmResult:
        return await self._one(op)

    async def add_note(self, op: CrmOperation) -> CrmResult:
        return await self._one(op)

    async def record_outcome(self, op: CrmOperation) -> CrmResult:
        return await self._one(op)

    async def set_consent(self, op: CrmOperation) -> CrmResult:
        return await self._one(op)
