"""Built-in alert incidents, shared by every worker: one incident per key, one owner.

Each worker evaluates the rules on its own figures. An incident key (rule + labels) is
opened by the first worker that sees it firing (:func:`open_incident` claims it with a
conditional write, so two workers never both notify), refreshed by its owner while it
fires, and resolved by its owner, or by any worker once the owner has not refreshed it
for ``stale_after`` (a worker that died or lost the partition).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.store._rows import record_of
from wa_bridge.store._upsert import insert_for
from wa_bridge.store.tables import alert_incidents

__all__ = [
    "Incident",
    "IncidentState",
    "list_incidents",
    "mark_notified",
    "open_incident",
    "refresh_incident",
    "resolve_incident",
]

IncidentState = Literal["firing", "resolved"]
_i = alert_incidents.c


@dataclass(frozen=True, slots=True)
class Incident:
    key: str
    rule: str
    labels: dict[str, str]
    state: IncidentState
    summary: str
    severity: str
    owner: str
    notified: str
    opened_at: datetime
    seen_at: datetime
    resolved_at: datetime | None


def _to_incident(row: Any) -> Incident:
    return record_of(Incident, row, labels=dict(row.labels or {}))


async def open_incident(
    conn: AsyncConnection,
    now: datetime,
    *,
    key: str,
    rule: str,
    labels: Mapping[str, str],
    summary: str,
    severity: str,
    owner: str,
) -> bool:
    """Claim a firing incident for ``key``; True when this call opened it (notify then)."""
    # what the claim writes, whether the row is new or a resolved one opens again
    claim: dict[str, Any] = {
        "summary": summary,
        "severity": severity,
        "owner": owner,
        "opened_at": now,
        "seen_at": now,
    }
    # a new row starts resolved, so that the update below is what opens it
    resolved = {"state": "resolved", "notified": "resolved", "resolved_at": now}
    await conn.execute(
        insert_for(conn, alert_incidents)
        .values(key=key, rule=rule, labels=dict(labels), **resolved, **claim)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    result = await conn.execute(
        update(alert_incidents)
        .where(_i.key == key, _i.state == "resolved")
        .values(state="firing", notified="none", resolved_at=None, **claim)
    )
    return int(result.rowcount) == 1


async def refresh_incident(
    conn: AsyncConnection,
    now: datetime,
    *,
    key: str,
    summary: str,
    owner: str,
    stale_before: datetime,
) -> bool:
    """The owner (or anyone, once the owner went stale) keeps a firing incident fresh;
    True when ``owner`` owns it afterwards."""
    return await _update_firing(conn, key, owner, stale_before, summary=summary, seen_at=now)


async def resolve_incident(
    conn: AsyncConnection, now: datetime, *, key: str, owner: str, stale_before: datetime
) -> bool:
    """Resolve a firing incident owned by ``owner`` (or stale); True when this call did."""
    return await _update_firing(
        conn,
        key,
        owner,
        stale_before,
        state="resolved",
        notified="none",
        resolved_at=now,
        seen_at=now,
    )


async def _update_firing(
    conn: AsyncConnection, key: str, owner: str, stale_before: datetime, **values: Any
) -> bool:
    """Write ``values`` and ``owner`` to the firing incident ``key`` when ``owner`` holds
    it, or its holder went stale (last seen before ``stale_before``); True when it did."""
    result = await conn.execute(
        update(alert_incidents)
        .where(
            _i.key == key,
            _i.state == "firing",
            or_(_i.owner == owner, _i.seen_at < stale_before),
        )
        .values(owner=owner, **values)
    )
    return int(result.rowcount) == 1


async def mark_notified(conn: AsyncConnection, *, key: str, state: IncidentState) -> None:
    await conn.execute(
        update(alert_incidents).where(_i.key == key, _i.state == state).values(notified=state)
    )


async def list_incidents(
    conn: AsyncConnection,
    *,
    owner: str | None = None,
    unnotified: bool = False,
    since: datetime | None = None,
    limit: int = 50,
) -> list[Incident]:
    """Incidents, firing first then the most recently opened."""
    stmt = select(alert_incidents)
    if owner is not None:
        stmt = stmt.where(_i.owner == owner)
    if unnotified:
        stmt = stmt.where(_i.notified != _i.state)
    if since is not None:
        stmt = stmt.where(or_(_i.state == "firing", and_(_i.resolved_at >= since)))
    stmt = stmt.order_by(_i.state, _i.opened_at.desc()).limit(limit)
    return [_to_incident(row) for row in await conn.execute(stmt)]
