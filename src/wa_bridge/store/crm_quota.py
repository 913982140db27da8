"""Each CRM instance's shared quota (table ``crm_quota``): load it, merge a change into it.

The row is what every worker process knows of one HubSpot portal's or Salesforce org's
budget: no request before ``blocked_until``; the daily budget (``daily_remaining`` of
``daily_limit``, seen at ``updated_at``) and, once spent, ``resets_at``. The rules that
combine two views live with the gate (``wa_bridge.connectors.quota``); this module only
reads and writes the row, a change merged under a row lock so two writers never lose each
other's block.

:func:`quota_store_for` picks how to reach the row from the state store's engine:
PostgreSQL gets a pool of its own made like the store's (a worker's batch holds a store
connection while it calls the CRM, so the gate must never wait for one of those); a SQLite
file gets a connection of its own, which
waits at most ``SQLITE_BUSY_MS`` for SQLite's one write lock (a worker's open batch holds
it while it calls the CRM), so a write that would wait longer fails with StoreUnavailable
and the caller keeps its change for later; an in-memory SQLite database has no second
connection, so no shared row (None).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import case, event, exc, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from wa_bridge.errors import ConfigError, StoreUnavailable
from wa_bridge.store._upsert import insert_for
from wa_bridge.store.db import create_engine, store_errors
from wa_bridge.store.tables import crm_quota

__all__ = ["SQLITE_BUSY_MS", "CrmQuota", "SqlQuotaStore", "quota_store_for"]

SQLITE_BUSY_MS: Final = 100


@dataclass(frozen=True, slots=True)
class CrmQuota:
    """One CRM instance's quota as far as anyone knows (times aware, UTC)."""

    blocked_until: datetime | None = None
    daily_remaining: int | None = None
    daily_limit: int | None = None
    resets_at: datetime | None = None
    updated_at: datetime | None = None  # when the daily figures were seen; None: never

    @property
    def has_daily(self) -> bool:
        return self.daily_remaining is not None


class SqlQuotaStore:
    """The ``crm_quota`` rows through ``engine``; closes the engine only if it owns it."""

    def __init__(self, engine: AsyncEngine, *, owns_engine: bool = False) -> None:
        self._engine = engine
        self._owns_engine = owns_engine

    async def load(self, crm: str) -> CrmQuota | None:
        """The row of ``crm``, or None. Raises StoreUnavailable when the database is down."""
        with _errors("reading the CRM quota"):
            async with self._engine.connect() as conn:
                row = (
                    (await conn.execute(select(crm_quota).where(crm_quota.c.crm == crm)))
                    .mappings()
                    .first()
                )
        return _quota(row) if row is not None else None

    async def merge(
        self,
        crm: str,
        change: CrmQuota,
        combine: Callable[[CrmQuota, CrmQuota], CrmQuota],
        *,
        now: datetime,
    ) -> CrmQuota:
        """Write ``combine(stored, change)`` as the row of ``crm`` (locked meanwhile); return
        it. A missing row counts as an empty :class:`CrmQuota`. Raises StoreUnavailable."""
        with _errors("writing the CRM quota"):
            async with self._engine.begin() as conn:
                insert = insert_for(conn, crm_quota).values(crm=crm, updated_at=now)
                await conn.execute(insert.on_conflict_do_nothing(index_elements=["crm"]))
                stmt = select(crm_quota).where(crm_quota.c.crm == crm).with_for_update()
                row = (await conn.execute(stmt)).mappings().one()
                merged = combine(_quota(row), change)
                values = {
                    "blocked_until": merged.blocked_until,
                    "daily_remaining": merged.daily_remaining,
                    "daily_limit": merged.daily_limit,
                    "resets_at": merged.resets_at,
                    "updated_at": merged.updated_at or now,
                }
                await conn.execute(update(crm_quota).where(crm_quota.c.crm == crm).values(values))
        return merged

    async def extend_block(self, crm: str, until: datetime, *, now: datetime) -> None:
        """Make the row's ``blocked_until`` at least ``until`` in one statement (no lock,
        no read, a missing row created; autocommitted on PostgreSQL): a Retry-After
        reaches the other workers as soon as one write can take it there, where
        :meth:`merge` needs five round trips. The daily figures are left as they are.
        Raises StoreUnavailable."""
        with _errors("writing the CRM quota"):
            async with self._engine.connect() as conn:
                if conn.dialect.name == "postgresql":  # no BEGIN and COMMIT round trips
                    conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                insert = insert_for(conn, crm_quota).values(
                    crm=crm, blocked_until=until, updated_at=now
                )
                stored, new = crm_quota.c.blocked_until, insert.excluded.blocked_until
                later = case((stored.is_(None) | (stored < new), new), else_=stored)
                await conn.execute(
                    insert.on_conflict_do_update(
                        index_elements=["crm"], set_={"blocked_until": later}
                    )
                )
                await conn.commit()  # SQLite's own BEGIN (store.db); nothing on PostgreSQL

    async def aclose(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()


def quota_store_for(engine: AsyncEngine | None) -> SqlQuotaStore | None:
    """How a gate reaches the shared quota through the state store's ``engine`` (see the
    module docstring); None when there is no state database to share."""
    if engine is None:
        return None
    if engine.dialect.name != "sqlite":
        # a pool of its own, made like the store's (same server settings): the worker's
        # batches hold the store's connections while they call the CRM, and each call
        # needs this row; sharing one pool could leave none for it
        pool = engine.sync_engine.pool.recreate()
        return SqlQuotaStore(create_async_engine(engine.url, pool=pool), owns_engine=True)
    database = engine.url.database
    if database in (None, "", ":memory:") or "mode=memory" in str(engine.url):
        return None
    own = create_engine(f"sqlite+aiosqlite:///{database}")

    @event.listens_for(own.sync_engine, "connect")
    def _short_busy_wait(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.close()

    return SqlQuotaStore(own, owns_engine=True)


def _quota(row: Any) -> CrmQuota:
    has_daily = row["daily_remaining"] is not None
    return CrmQuota(
        blocked_until=row["blocked_until"],
        daily_remaining=row["daily_remaining"],
        daily_limit=row["daily_limit"],
        resets_at=row["resets_at"],
        updated_at=row["updated_at"] if has_daily else None,
    )


@contextmanager
def _errors(what: str) -> Iterator[None]:
    """``store_errors``, plus a clear word when the table's migration has not run."""
    try:
        with store_errors(what):
            yield
    except exc.TimeoutError as err:  # no connection free in time: the database is busy
        raise StoreUnavailable(f"state database busy during {what}; retry later") from err
    except exc.ProgrammingError as err:
        raise ConfigError(
            "the state database has no crm_quota table: run `wa-bridge db upgrade`"
        ) from err
