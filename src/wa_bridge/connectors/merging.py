"""Merging two contacts in the CRM (``wa-bridge identity merge``): the seam each CRM fills.

Each vendor may bring a :class:`ContactMerger` on its :class:`~wa_bridge.connectors.base.
Vendor` record: ``merge(connector, request)`` makes the CRM hold one contact where it held
two (the CRM's own merge endpoint, or the records that name the other contact moved to
the kept one; each vendor's ``merge`` module says which), and, where
the CRM allows it, ``unmerge(connector, request)`` undoes that from what the merge
returned in :attr:`CrmMergeResult.undo`. The caller (``wa_bridge.ops.identity``) changes
our own maps in the same breath; nothing here touches them.

A merge never guesses: with ``dry_run`` it only reads and says what it would do. It
raises :mod:`wa_bridge.errors` errors when the CRM fails or refuses, before our maps
change. Lines for the operator name CRM record ids, never personal data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wa_bridge.store.book import MatchKind

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from wa_bridge.connectors.base import CrmConnector

__all__ = [
    "ContactMerger",
    "CrmMergeResult",
    "MergeRequest",
    "UnmergeRequest",
    "crm_ids",
    "merge_in_crm",
    "unmerge_in_crm",
]


@dataclass(frozen=True, slots=True)
class MergeRequest:
    """Merge the CRM record of our contact ``other_key`` into that of ``keep_key``.

    ``keep_crm_id`` / ``other_crm_id``: the CRM's ids of their contact records, as the
    record book knows them (None: not known to be in this CRM); ``other_match``: how
    wa-bridge came to own the other record (``created`` it, or adopted the company's own).
    ``conn`` is the state store's open transaction: a CRM that lives in the state database
    (the built-in SQL CRM) writes in it, so its merge commits with our maps.
    """

    keep_key: str
    other_key: str
    keep_crm_id: str | None = None
    other_crm_id: str | None = None
    other_match: MatchKind | None = None
    dry_run: bool = False
    conn: AsyncConnection | None = None


@dataclass(frozen=True, slots=True)
class CrmMergeResult:
    """What the CRM did (or, for a dry run, would do).

    ``lines``: one sentence each, for the operator and the audit log (ids, no personal
    data). ``reversible``: ``unmerge`` can undo it in the CRM too. ``keep_crm_id``: the
    kept record's id after the merge when the CRM gave it a new one. ``fields_merged``:
    the kept record took the other's values where it had none (so the record book counts
    them as filled). ``undo``: JSON data the vendor's ``unmerge`` needs.
    """

    lines: tuple[str, ...]
    reversible: bool
    keep_crm_id: str | None = None
    fields_merged: bool = False
    undo: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UnmergeRequest:
    """Undo a merge of ``other_key`` into ``keep_key`` in the CRM, from the merge's
    ``undo`` data; ``conn`` as in :class:`MergeRequest`."""

    keep_key: str
    other_key: str
    undo: Mapping[str, Any]
    conn: AsyncConnection | None = None


MergeFn = Callable[["CrmConnector", MergeRequest], Awaitable[CrmMergeResult]]
UnmergeFn = Callable[["CrmConnector", UnmergeRequest], Awaitable[tuple[str, ...]]]


@dataclass(frozen=True, slots=True)
class ContactMerger:
    """A CRM's merge of two contacts, and its undo when the CRM allows one (None: the
    CRM's merge is final; ``unmerge`` then gives our maps back only)."""

    merge: MergeFn
    unmerge: UnmergeFn | None = None


def crm_ids(vendor: str, request: MergeRequest, record: str) -> tuple[str, str] | CrmMergeResult:
    """(kept id, other id) of the two CRM records, or, when the book knows only one of
    them (or none), the result of a merge with nothing to do in the CRM. ``record`` names
    the vendor's contact record in that result's line."""
    keep, other = request.keep_crm_id, request.other_crm_id
    if keep is not None and other is not None:
        return keep, other
    which = "the other contact" if other is None else "the kept contact"
    return CrmMergeResult(
        (f"{vendor}: {which} has no {record} known to wa-bridge: nothing to merge there",),
        reversible=True,
    )


def _merger(connector_name: str) -> ContactMerger | None:
    from wa_bridge.connectors import _vendor

    return _vendor(connector_name).merger


async def merge_in_crm(
    connector_name: str, connector: CrmConnector, request: MergeRequest
) -> CrmMergeResult:
    """Merge in the CRM ``connector_name`` names (its vendor's merger), through
    ``connector``. A CRM without a merger changes nothing and says so."""
    merger = _merger(connector_name)
    if merger is None:
        return CrmMergeResult(
            (f"{connector_name}: this CRM has no merge; merge the two records there by hand",),
            reversible=True,
        )
    return await merger.merge(connector, request)


async def unmerge_in_crm(
    connector_name: str, connector: CrmConnector, request: UnmergeRequest
) -> tuple[str, ...]:
    """Undo a merge in the CRM when its vendor can; else say that it stays merged there."""
    merger = _merger(connector_name)
    if merger is None or merger.unmerge is None:
        return (
            f"{connector_name}: the CRM's merge cannot be undone; the other contact gets a "
            "new CRM record on its next message",
        )
    return await merger.unmerge(connector, request)
