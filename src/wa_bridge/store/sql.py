"""The Store on SQLAlchemy 2 async Core: PostgreSQL (asyncpg) and SQLite (aiosqlite), one code.

Every public method translates connection failures into ``StoreUnavailable`` (see
``wa_bridge.store.db.store_errors``); nothing is committed before the transaction context
exits cleanly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wa_bridge.events import Contact
from wa_bridge.store import (
    account_events,
    audit,
    cases,
    crm_records,
    dead_letters,
    ledger,
    statuses,
    traces,
)
from wa_bridge.store._methods import query, stamped
from wa_bridge.store.api import (
    AccountEvent,
    AccountSignal,
    CaseRecord,
    CaseSet,
    DeadLetterStatus,
    EventTrace,
    FirstTouch,
    IdentityChange,
    LedgerOutcome,
    NewDeadLetter,
)
from wa_bridge.store.book import RecordBook
from wa_bridge.store.consent import ConsentRecord, record_consents
from wa_bridge.store.db import create_engine, store_errors
from wa_bridge.store.identity_map import IdentityGraph, all_keys, change_keys
from wa_bridge.store.ops import OpsStore
from wa_bridge.store.retention import PurgeTarget, purge_target
from wa_bridge.store.tables import metadata

__all__ = ["Clock", "SqlStore", "SqlStoreTx", "open_store", "utc_now"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class SqlStoreTx:
    """One open transaction on one connection (implements ``StoreTx``).

    ``connection`` is exposed so the built-in SQL CRM can write in the same transaction
    (``SqlCrmConnector.apply_in``): ledger and CRM rows then commit together.
    """

    def __init__(self, conn: AsyncConnection, clock: Clock) -> None:
        self.connection = conn
        self._clock = clock
        # claimed here, ledger row still holding PROVISIONAL_OUTCOME unconfirmed
        self._provisional: set[str] = set()
        # status ranks read by seen_messages, for the advance_statuses that follows it
        self._asked: frozenset[str] = frozenset()
        self._ranks: dict[str, int] = {}

    async def claim_events(self, event_ids: Sequence[str]) -> set[str]:
        with store_errors("claim_events"):
            claimed = await ledger.claim_events(
                self.connection, event_ids, self._clock(), ledger.PROVISIONAL_OUTCOME
            )
        self._provisional |= claimed
        return claimed

    async def set_outcomes(self, outcomes: Sequence[tuple[str, LedgerOutcome]]) -> None:
        """Record outcomes; an id claimed in this transaction whose outcome is the
        provisional one written with its claim needs no write (the usual case)."""
        final = dict(outcomes)
        todo: list[tuple[str, LedgerOutcome | None]] = []
        for event_id, outcome in final.items():
            if event_id in self._provisional:
                self._provisional.discard(event_id)
                if outcome == ledger.PROVISIONAL_OUTCOME:
                    continue
            todo.append((event_id, outcome))
        with store_errors("set_outcomes"):
            await ledger.set_outcomes(self.connection, todo, self._clock())

    async def finish(self) -> None:
        """Before commit: ids claimed but never given an outcome get none (NULL), as if the
        claim had written none. Called by ``SqlStore.transaction``; not after an error."""
        if self._provisional:
            unconfirmed = sorted(self._provisional)
            self._provisional.clear()
            with store_errors("set_outcomes"):
                await ledger.set_outcomes(
                    self.connection, [(i, None) for i in unconfirmed], self._clock()
                )

    async def resolve_contacts(self, items: Sequence[tuple[str, Contact]]) -> list[str | None]:
        with store_errors("resolve_contacts"):
            graph = IdentityGraph(self.connection, self._clock())
            await graph.load(all_keys(items))
            out = graph.resolve_all(items)
            await graph.flush()
            return out

    async def apply_identity_changes(self, changes: Sequence[IdentityChange]) -> list[str | None]:
        with store_errors("apply_identity_changes"):
            graph = IdentityGraph(self.connection, self._clock())
            await graph.load(change_keys(changes))
            out: list[str | None] = [graph.change(ch) for ch in changes]
            await graph.flush()
            return out

    async def load_cases(
        self, contact_ids: Sequence[str], conversation_ids: Sequence[str] = ()
    ) -> CaseSet:
        with store_errors("load_cases"):
            return await cases.load_cases(self.connection, contact_ids, conversation_ids)

    async def save_cases(self, records: Sequence[CaseRecord], new: Sequence[str]) -> None:
        with store_errors("save_cases"):
            await cases.save_cases(self.connection, records, new)

    async def seen_messages(self, message_ids: Sequence[str]) -> set[str]:
        """Also keeps the ranks read, so the batch's advance_statuses of these messages
        needs no SELECT of its own (one round trip less)."""
        with store_errors("seen_messages"):
            self._ranks = await statuses.status_ranks(self.connection, message_ids)
        self._asked = frozenset(message_ids)
        return set(self._ranks)

    async def first_touches(self, contact_ids: Sequence[str]) -> set[str]:
        with store_errors("first_touches"):
            return await cases.first_touches(self.connection, contact_ids)

    async def set_first_touches(self, touches: Sequence[FirstTouch]) -> None:
        with store_errors("set_first_touches"):
            await cases.set_first_touches(self.connection, touches)

    async def record_account_events(self, events: Sequence[AccountEvent]) -> None:
        with store_errors("record_account_events"):
            await account_events.record_account_events(self.connection, events)

    async def advance_statuses(self, items: Sequence[tuple[str, str, datetime]]) -> list[bool]:
        recorded: dict[str, int] | None = None
        if self._asked and all(mid in self._asked for mid, _, _ in items):
            recorded = self._ranks  # read by seen_messages; nothing wrote them since
        self._asked, self._ranks = frozenset(), {}  # used once: this call writes them
        with store_errors("advance_statuses"):
            return await statuses.advance_statuses(self.connection, items, recorded)

    async def add_dead_letters(self, letters: Sequence[NewDeadLetter]) -> list[int]:
        with store_errors("add_dead_letters"):
            return await dead_letters.add_dead_letters(self.connection, letters)

    async def load_records(self, crm: str, keys: Sequence[str]) -> RecordBook:
        with store_errors("load_records"):
            return await crm_records.load_book(self.connection, crm, keys)

    async def save_records(self, book: RecordBook) -> None:
        with store_errors("save_records"):
            await crm_records.save_book(self.connection, book, self._clock())

    async def record_traces(
        self, traces_: Sequence[EventTrace], signals: Sequence[AccountSignal] = ()
    ) -> None:
        with store_errors("record_traces"):
            await traces.record_traces(self.connection, traces_, self._clock())
            if signals:
                await traces.record_signals(self.connection, signals)

    async def record_consents(self, records: Sequence[ConsentRecord]) -> list[bool]:
        with store_errors("record_consents"):
            return await record_consents(self.connection, records)


class SqlStore:
    """The state database (implements ``Store``). Create with :func:`open_store`."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock = utc_now) -> None:
        self.engine = engine
        self._now = clock
        self.ops = OpsStore(engine, now=clock)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlStoreTx]:
        with store_errors("transaction"):
            async with self.engine.begin() as conn:
                tx = SqlStoreTx(conn, self._now)
                yield tx
                await tx.finish()

    list_dead_letters = query(dead_letters.list_dead_letters)
    count_dead_letters = query(dead_letters.count_dead_letters)
    get_dead_letter = query(dead_letters.get_dead_letter)

    async def set_dead_letter_status(
        self, dead_letter_id: int, status: DeadLetterStatus, *, note: str | None = None
    ) -> None:
        with store_errors("set_dead_letter_status"):
            async with self.engine.begin() as conn:
                await dead_letters.set_dead_letter_status(conn, dead_letter_id, status, note)

    record_audit = stamped(audit.record_audit)
    account_events = query(account_events.list_account_events)
    lapsed_cases = query(cases.lapsed_cases)
    purge_ledger = query(ledger.purge_ledger, write=True)  # the retention job
    purge_dead_letters = query(dead_letters.purge_dead_letters, write=True)

    async def purge(self, target: PurgeTarget, older_than: datetime) -> int:
        """Retention: remove ``target``'s rows older than ``older_than``; return how many."""
        with store_errors(f"purge {target}"):
            async with self.engine.begin() as conn:
                return await purge_target(conn, target, older_than)

    async def create_all(self) -> None:
        """Create the tables that are missing (SQLite dev and tests; production migrates)."""
        with store_errors("create_all"):
            async with self.engine.begin() as conn:
                await conn.run_sync(metadata.create_all)

    async def aclose(self) -> None:
        await self.engine.dispose()


async def open_store(url: str, *, create: bool = False, clock: Clock = utc_now) -> SqlStore:
    """Open the state database at ``url``; with ``create``, create missing tables first.

    Raises ConfigError for an unsupported URL and StoreUnavailable when ``create`` cannot
    reach the database. Close with ``await store.aclose()``.
    """
    store = SqlStore(create_engine(url), clock=clock)
    if create:
        try:
            await store.create_all()
        except BaseException:
            await store.aclose()
            raise
    return store
