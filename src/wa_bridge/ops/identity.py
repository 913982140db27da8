"""``wa-bridge identity report | merge | unmerge``: the operator's side of contact merges.

- :func:`report`: contacts that look like one person
  (:mod:`wa_bridge.store.identity_report`); :func:`lookalike_data` shows them with phones
  masked and BSUIDs hidden, each with its keyed hash (the one ``identity_events`` keeps),
  unless ``reveal``: then raw, and the audit log says who saw them.
- :func:`merge`: one transaction of the state store holds the plan, the CRM's merge
  (through the configured connector's vendor, :mod:`wa_bridge.connectors.merging`), our
  maps' changes (:mod:`wa_bridge.store.identity_merges`) and the audit row; a CRM that
  fails or refuses leaves our maps as they were. ``dry_run`` reads only (and audits).
- :func:`unmerge`: our maps back (:mod:`wa_bridge.store.identity_unmerge`), and the CRM's
  merge too where the vendor can undo it (the SQL CRM); the HTTP CRMs' merges are final
  there, and the lines say so.

Every action is written to ``audit_log`` with the caller's actor and role.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.connectors.merging import (
    MergeRequest,
    UnmergeRequest,
    merge_in_crm,
    unmerge_in_crm,
)
from wa_bridge.log import hash_key
from wa_bridge.ops.masking import HIDDEN, mask_phone
from wa_bridge.store import audit
from wa_bridge.store.db import store_errors
from wa_bridge.store.identity_merges import CrmOutcome, apply_merge
from wa_bridge.store.identity_report import ContactFacts, Lookalike, find_lookalikes
from wa_bridge.store.identity_unmerge import apply_unmerge, plan_unmerge
from wa_bridge.store.merge_plan import plan_merge
from wa_bridge.store.merges import MergeRow, list_merges

if TYPE_CHECKING:
    from wa_bridge.connectors.base import CrmConnector
    from wa_bridge.settings import Settings
    from wa_bridge.store.sql import SqlStore

__all__ = [
    "Listing",
    "MergeOutcome",
    "UnmergeOutcome",
    "audited_listing",
    "lookalike_data",
    "merge",
    "merges",
    "report",
    "unmerge",
]

AUDIT_DETAIL_CHARS: Final = 300
Now = Callable[[], datetime]
T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class MergeOutcome:
    """What a merge did (``merge_id`` None: a dry run, nothing changed)."""

    keep_id: str
    other_id: str
    merge_id: int | None
    map_lines: tuple[str, ...]
    crm_lines: tuple[str, ...]
    crm_reversible: bool


@dataclass(frozen=True, slots=True)
class UnmergeOutcome:
    merge_id: int
    keep_id: str
    other_id: str
    map_lines: tuple[str, ...]
    crm_lines: tuple[str, ...]


# --- report -----------------------------------------------------------------------------


async def report(
    store: SqlStore, *, actor: str, role: str, reveal: bool = False, limit: int = 200
) -> list[Lookalike]:
    """The look-alike pairs; audited (``identity.report``, or ``identity.report.reveal``
    when the caller will show identifiers unmasked)."""
    return await audited_listing(
        store,
        "identity report",
        lambda conn: find_lookalikes(conn, limit=limit),
        Listing(actor, role, "identity.report", "identities", "pair(s)", reveal),
    )


@dataclass(frozen=True, slots=True)
class Listing:
    """Who lists what, for the audit row: ``action`` (``.reveal`` added when ``reveal``),
    ``target``, and ``noun`` for the count in the detail."""

    actor: str
    role: str
    action: str
    target: str
    noun: str
    reveal: bool


async def audited_listing(
    store: SqlStore,
    what: str,
    read: Callable[[AsyncConnection], Awaitable[list[T]]],
    listing: Listing,
) -> list[T]:
    """``read``'s rows, and the audit row saying who listed them, in one transaction."""
    with store_errors(what):
        async with store.engine.begin() as conn:
            found = await read(conn)
            detail = f"{len(found)} {listing.noun}"
            await audit.record_audit(
                conn,
                at=_now(),
                actor=listing.actor,
                role=listing.role,
                action=f"{listing.action}.reveal" if listing.reveal else listing.action,
                target=listing.target,
                detail=detail + (", identifiers shown unmasked" if listing.reveal else ""),
            )
    return found


def shown(kind: str, value: str | None, *, reveal: bool) -> str | None:
    """An identifier as the report shows it: raw with ``reveal``, else a phone masked and
    a BSUID hidden, each followed by its keyed hash."""
    if value is None:
        return None
    if reveal:
        return value
    masked = mask_phone(value) if kind == "phone" else HIDDEN
    return f"{masked} ({hash_key(value)})"


def _contact_data(facts: ContactFacts, *, reveal: bool) -> dict[str, Any]:
    return {
        "contact_id": facts.contact_id,
        "created_at": facts.created_at.isoformat() if facts.created_at else None,
        "cases": facts.cases,
        "identifiers": [
            {"kind": kind, "value": shown(kind, value, reveal=reveal)}
            for kind, value in facts.current
        ],
    }


def lookalike_data(item: Lookalike, *, reveal: bool = False) -> dict[str, Any]:
    """A pair as JSON data (masked unless ``reveal``), with the command that merges it."""
    return {
        "keep": _contact_data(item.keep, reveal=reveal),
        "other": _contact_data(item.other, reveal=reveal),
        "evidence": [
            {
                "rule": e.rule,
                "kind": e.kind,
                "keep_value": shown(e.kind, e.keep_value, reveal=reveal),
                "other_value": shown(e.kind, e.other_value, reveal=reveal),
                "count": e.count,
                "at": e.at.isoformat() if e.at else None,
                "ids": e.detail or None,
            }
            for e in item.evidence
        ],
        "command": f"wa-bridge identity merge {item.keep.contact_id} {item.other.contact_id}",
    }


# --- merge ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Act:
    """One merge or unmerge: its transaction, time and who does it (for the audit row)."""

    conn: AsyncConnection
    connector: CrmConnector
    at: datetime
    actor: str
    role: str

    async def audit(self, action: str, target: str, detail: str) -> None:
        await audit.record_audit(
            self.conn,
            at=self.at,
            actor=self.actor,
            role=self.role,
            action=action,
            target=target,
            detail=detail[:AUDIT_DETAIL_CHARS],
        )


@contextlib.asynccontextmanager
async def _acting(
    settings: Settings,
    store: SqlStore,
    connector: CrmConnector | None,
    *,
    actor: str,
    role: str,
    now: Now,
    what: str,
) -> AsyncIterator[_Act]:
    """One transaction of the state store, with the CRM's connector (``connector``, else
    the configured one, closed on exit)."""
    async with contextlib.AsyncExitStack() as stack:
        if connector is None:
            from wa_bridge.worker.assembly import build_crm_connector

            connector = build_crm_connector(settings, store)
            stack.push_async_callback(connector.aclose)
        with store_errors(what):
            async with store.engine.begin() as conn:
                yield _Act(conn, connector, now(), actor, role)


async def merge(
    settings: Settings,
    store: SqlStore,
    keep_id: str,
    other_id: str,
    *,
    actor: str,
    role: str = "operator",
    dry_run: bool = False,
    connector: CrmConnector | None = None,
    now: Now = _now,
) -> MergeOutcome:
    """Merge contact ``other_id`` into ``keep_id`` in our maps and in the CRM (see the
    module docstring). Raises MergeRefused (nothing changed) or the CRM's error (nothing
    changed in our maps; the CRM may have done part of its move: run it again)."""
    acting = _acting(
        settings, store, connector, actor=actor, role=role, now=now, what="identity merge"
    )
    async with acting as act:
        return await _merge_in(act, settings.connector, keep_id, other_id, dry_run)


async def _merge_in(
    act: _Act, connector_name: str, keep_id: str, other_id: str, dry_run: bool
) -> MergeOutcome:
    plan = await plan_merge(act.conn, keep_id, other_id, act.connector.instance)
    keep_record = plan.keep_record[1] if plan.keep_record else None
    other_record = plan.other_record[1] if plan.other_record else None
    request = MergeRequest(
        keep_key=keep_id,
        other_key=other_id,
        keep_crm_id=keep_record.crm_id if keep_record else None,
        other_crm_id=other_record.crm_id if other_record else None,
        other_match=other_record.match if other_record else None,
        dry_run=dry_run,
        conn=act.conn,
    )
    crm = await merge_in_crm(connector_name, act.connector, request)
    target = f"contact:{other_id}"
    merge_id = None
    if dry_run:
        detail = f"would merge into {keep_id}; " + "; ".join(crm.lines)
        await act.audit("identity.merge.dry_run", target, detail)
    else:
        outcome = CrmOutcome(
            crm=act.connector.instance,
            lines=crm.lines,
            reversible=crm.reversible,
            undo=crm.undo,
            keep_crm_id=crm.keep_crm_id,
            fields_merged=crm.fields_merged,
        )
        merge_id = await apply_merge(act.conn, plan, outcome, actor=act.actor, at=act.at)
        detail = f"merge {merge_id}: into {keep_id}; " + "; ".join(crm.lines)
        await act.audit("identity.merge", target, detail)
    return MergeOutcome(keep_id, other_id, merge_id, tuple(plan.lines()), crm.lines, crm.reversible)


# --- unmerge ----------------------------------------------------------------------------


async def unmerge(
    settings: Settings,
    store: SqlStore,
    merge_id: int,
    *,
    actor: str,
    role: str = "operator",
    connector: CrmConnector | None = None,
    now: Now = _now,
) -> UnmergeOutcome:
    """Undo merge ``merge_id`` in our maps (and in the CRM where it can be undone).
    Raises MergeRefused (nothing changed)."""
    acting = _acting(
        settings, store, connector, actor=actor, role=role, now=now, what="identity unmerge"
    )
    async with acting as act:
        plan = await plan_unmerge(act.conn, merge_id)
        row = plan.merge
        crm_lines = await _unmerge_crm(act, settings.connector, row)
        await apply_unmerge(act.conn, plan, actor=act.actor, at=act.at)
        detail = f"{row.other_id} out of {row.keep_id}; " + "; ".join(crm_lines)
        await act.audit("identity.unmerge", f"merge:{merge_id}", detail)
        return UnmergeOutcome(merge_id, row.keep_id, row.other_id, tuple(plan.lines()), crm_lines)


async def _unmerge_crm(act: _Act, connector_name: str, row: MergeRow) -> tuple[str, ...]:
    instance = act.connector.instance
    if row.crm != instance:
        return (
            f"the merge was made in CRM {row.crm}, not the configured {instance}: "
            "nothing undone in a CRM",
        )
    crm_undo = row.undo.get("crm")
    request = UnmergeRequest(
        keep_key=row.keep_id,
        other_key=row.other_id,
        undo=crm_undo if isinstance(crm_undo, dict) else {},
        conn=act.conn,
    )
    return await unmerge_in_crm(connector_name, act.connector, request)


async def merges(store: SqlStore, *, limit: int = 100) -> list[MergeRow]:
    """Merges, newest first (ids for ``unmerge``)."""
    with store_errors("identity merges"):
        async with store.engine.connect() as conn:
            return await list_merges(conn, limit)
