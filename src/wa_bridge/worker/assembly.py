"""The worker's parts, wired in one public place: the worker, the CLI and the admin API.

Every caller that needs the state store, the mapping, the CRM connector or the pipeline
builds them here from :class:`Settings`, so "where is X opened" has one answer:

- :func:`open_state_store` / :func:`state_store`: the store at ``settings.database_url``
  (SQLite under ``.wa-bridge`` when unset; SQLite tables are created on first use);
- :func:`load_event_mapper`: the compiled mapping at ``settings.mappings_path``;
- :func:`build_crm_connector`: the configured connector (the SQL CRM shares the store's
  engine; HubSpot and Salesforce find existing records in the mapping's ``match:`` order);
- :func:`open_pipeline`: all of the above as one :class:`Pipeline`, closed by a stack;
- :class:`DeadLetterReplayer`: replays dead letters by id or filter through that pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import KW_ONLY, dataclass, field
from types import TracebackType
from typing import Final

from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.connectors import deals_enabled
from wa_bridge.connectors.base import CrmConnector
from wa_bridge.operations import DEFAULT_MATCH_ORDER, MatchRule
from wa_bridge.settings import Settings
from wa_bridge.store.api import DeadLetter, DeadLetterFilter, Store
from wa_bridge.store.db import state_database_url
from wa_bridge.worker.consent import ConsentOptions
from wa_bridge.worker.conversations import ConversationOptions
from wa_bridge.worker.pipeline import EventMapper, Pipeline
from wa_bridge.worker.replay import ReplayResult, replay_dead_letters

__all__ = [
    "DeadLetterReplayer",
    "build_crm_connector",
    "load_event_mapper",
    "match_order_of",
    "open_pipeline",
    "open_state_store",
    "state_store",
]

AUDIT_DETAIL_CHARS: Final = 300


async def open_state_store(settings: Settings) -> Store:
    """The state store of ``settings``; the caller closes it (``await store.aclose()``).

    Raises ConfigError for an unsupported URL and StoreUnavailable when a SQLite file
    cannot be created.
    """
    from wa_bridge.store import open_store

    url = await asyncio.to_thread(state_database_url, settings.database_url)  # may mkdir
    return await open_store(url, create=url.startswith("sqlite"))


@contextlib.asynccontextmanager
async def state_store(settings: Settings) -> AsyncIterator[Store]:
    """:func:`open_state_store`, closed on exit."""
    store = await open_state_store(settings)
    try:
        yield store
    finally:
        await store.aclose()


def load_event_mapper(settings: Settings) -> EventMapper:
    """The compiled mapping of ``settings.mappings_path`` (the shipped copy when absent).

    Raises ConfigError (with file:line) when the mapping is invalid or written for another
    connector than ``settings.connector``.
    """
    from wa_bridge.mapping import check_connector, load_mapping
    from wa_bridge.resources import resolve_mappings_path

    mapping = load_mapping(resolve_mappings_path(settings.mappings_path))
    mapper: EventMapper = check_connector(mapping, settings.connector)
    return mapper


def build_crm_connector(
    settings: Settings,
    store: Store,
    *,
    match_order: Sequence[MatchRule] = DEFAULT_MATCH_ORDER,
    clock: Clock = SYSTEM_CLOCK,
) -> CrmConnector:
    """The connector of ``settings.connector``; the caller closes it (``aclose``).

    The built-in SQL CRM writes through the store's engine; ``match_order`` is the
    mapping's ``match:`` (how a connector finds a contact's existing CRM record); ``clock``
    is what the CRM's gate waits on. Raises ConfigError when the connector's settings are
    incomplete.
    """
    from wa_bridge.connectors import build_connector

    return build_connector(
        settings, engine=getattr(store, "engine", None), match_order=match_order, clock=clock
    )


def match_order_of(mapper: EventMapper) -> tuple[MatchRule, ...]:
    """The ``match:`` order of a compiled mapping (the default for any other mapper)."""
    from wa_bridge.mapping import CompiledMapping

    return mapper.match_order if isinstance(mapper, CompiledMapping) else DEFAULT_MATCH_ORDER


async def open_pipeline(
    settings: Settings,
    stack: contextlib.AsyncExitStack,
    *,
    store: Store | None = None,
    mapper: EventMapper | None = None,
    connector: CrmConnector | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Pipeline:
    """Store → mapping → connector → pipeline. Parts not given are built from ``settings``
    and closed by ``stack`` (in reverse order); parts given stay the caller's to close."""
    if store is None:
        store = await open_state_store(settings)
        stack.push_async_callback(store.aclose)
    if mapper is None:
        mapper = load_event_mapper(settings)
    if connector is None:
        connector = build_crm_connector(
            settings, store, match_order=match_order_of(mapper), clock=clock
        )
        stack.push_async_callback(connector.aclose)
    return Pipeline(
        store,
        mapper,
        connector,
        conversations=ConversationOptions.from_settings(settings),
        deals=deals_enabled(settings),
        consent=ConsentOptions.from_settings(settings),
    )


@dataclass(eq=False, repr=False)
class DeadLetterReplayer:
    """Replays dead letters of ``store`` through the worker's pipeline.

    The mapping and the connector are built on the first replay that needs them (a dry
    run needs neither) and closed by :meth:`aclose`; the store stays the caller's.
    """

    settings: Settings
    store: Store
    _: KW_ONLY
    mapper: EventMapper | None = None
    connector: CrmConnector | None = None
    clock: Clock = SYSTEM_CLOCK
    _pipeline: Pipeline | None = field(init=False, default=None)
    _stack: contextlib.AsyncExitStack = field(init=False, default_factory=contextlib.AsyncExitStack)

    async def __aenter__(self) -> DeadLetterReplayer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def replay(
        self,
        ids: Sequence[int] = (),
        *,
        flt: DeadLetterFilter | None = None,
        actor: str,
        role: str = "operator",
        dry_run: bool = False,
    ) -> list[ReplayResult]:
        """Replay the dead letters ``ids`` plus those ``flt`` selects, in id order.

        An id with no dead letter gets a ``not_found`` result (after the others). Each
        dead letter is replayed once even when both ``ids`` and ``flt`` name it, and each
        result is written to the audit log once (``dlq.replay`` or ``dlq.replay.dry_run``
        by ``actor`` with ``role``).
        """
        letters: dict[int, DeadLetter] = {}
        if flt is not None:
            letters.update((d.id, d) for d in await self.store.list_dead_letters(flt))
        missing: list[int] = []
        for dead_letter_id in ids:
            if dead_letter_id in letters or dead_letter_id in missing:
                continue
            letter = await self.store.get_dead_letter(dead_letter_id)
            if letter is None:
                missing.append(dead_letter_id)
            else:
                letters[dead_letter_id] = letter
        pipeline = None
        if not dry_run and any(d.status == "open" for d in letters.values()):
            pipeline = await self._pipeline_once()
        results = await replay_dead_letters(
            self.store, pipeline, list(letters.values()), dry_run=dry_run, clock=self.clock
        )
        results += [ReplayResult(i, "", "not_found") for i in missing]
        action = "dlq.replay.dry_run" if dry_run else "dlq.replay"
        for result in results:
            await self.store.record_audit(
                actor=actor,
                role=role,
                action=action,
                target=f"dead_letter:{result.dead_letter_id}",
                detail=_audit_detail(result),
            )
        return results

    async def _pipeline_once(self) -> Pipeline:
        if self._pipeline is None:
            self._pipeline = await open_pipeline(
                self.settings,
                self._stack,
                store=self.store,
                mapper=self.mapper,
                connector=self.connector,
            )
        return self._pipeline

    async def aclose(self) -> None:
        """Close the connector this replayer built (not the store)."""
        self._pipeline = None
        await self._stack.aclose()


def _audit_detail(result: ReplayResult) -> str:
    detail = f"{result.status}: {result.detail}" if result.detail else result.status
    return detail[:AUDIT_DETAIL_CHARS]
