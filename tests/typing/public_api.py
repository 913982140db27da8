"""Public signatures, checked by mypy --strict (scripts/test runs mypy on this file too).

Nothing here runs: the functions are only type-checked, like faststream's tests/mypy.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, assert_type

from wa_bridge.connectors.base import CrmConnector, CrmResult
from wa_bridge.events import CanonicalEvent, Contact
from wa_bridge.mapping import CompiledMapping, load_mapping
from wa_bridge.normalize import normalize_webhook
from wa_bridge.normalize.phones import country_of, to_e164
from wa_bridge.operations import CrmOperation
from wa_bridge.settings import Settings, load_settings
from wa_bridge.store import open_store
from wa_bridge.store.api import Store, StoreTx


def _normalize() -> None:
    events = normalize_webhook({}, received_at=datetime.now(UTC))
    assert_type(events, list[CanonicalEvent])
    assert_type(events[0].subject, str | None)
    assert_type(CanonicalEvent.from_json(b"{}"), CanonicalEvent)
    assert_type(Contact(key=None).to_dict(), dict[str, Any])
    assert_type(to_e164("5215512345678"), str | None)
    assert_type(country_of("+525512345678"), str | None)


def _mapping() -> None:
    mapping = load_mapping("mappings/sql.yaml")
    assert_type(mapping, CompiledMapping)
    assert_type(mapping.apply(CanonicalEvent.from_json(b"{}")), list[CrmOperation])


async def _store_and_connector(connector: CrmConnector, op: CrmOperation) -> None:
    store: Store = await open_store("sqlite+aiosqlite:///x.db")  # SqlStore is a Store
    async with store.transaction() as tx:
        assert_type(tx, StoreTx)
        assert_type(await tx.claim_events(["id"]), set[str])
    assert_type(await connector.apply([op]), Sequence[CrmResult])


def _settings() -> None:
    assert_type(load_settings(), Settings)
