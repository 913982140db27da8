"""The state store: dedup ledger, identity graph, cases, statuses, dead letters, audit, and
the record book of an HTTP CRM (``crm_records``).

Open it with :func:`open_store`; the worker codes against the ``Store`` / ``StoreTx``
protocols in ``wa_bridge.store.api``.
"""

from wa_bridge.store.api import (
    DeadLetter,
    DeadLetterFilter,
    DeadLetterStatus,
    IdentityChange,
    LedgerOutcome,
    NewDeadLetter,
    Store,
    StoreTx,
)
from wa_bridge.store.book import KnownRecord, MatchKind, RecordBook, value_hash
from wa_bridge.store.db import create_engine, default_database_url, resolve_database_url
from wa_bridge.store.sql import SqlStore, SqlStoreTx, open_store

__all__ = [
    "DeadLetter",
    "DeadLetterFilter",
    "DeadLetterStatus",
    "IdentityChange",
    "KnownRecord",
    "LedgerOutcome",
    "MatchKind",
    "NewDeadLetter",
    "RecordBook",
    "SqlStore",
    "SqlStoreTx",
    "Store",
    "StoreTx",
    "create_engine",
    "default_database_url",
    "open_store",
    "resolve_database_url",
    "value_hash",
]
