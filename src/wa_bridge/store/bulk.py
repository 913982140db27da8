"""Set-based SQL for whole batches, public for code that writes tables of the state database
from outside the store (the built-in SQL CRM connector).

The store's own modules use the same helpers: arrays on PostgreSQL (``insert_arrays``,
``column_arrays``, ``members``), portable Core on SQLite (``insert_for``, ``chunks``).
See ``wa_bridge.store._bulk`` for the measurements behind them.
"""

from wa_bridge.store._bulk import column_arrays, insert_arrays, is_postgres, members
from wa_bridge.store._chunks import IN_CHUNK, chunks
from wa_bridge.store._upsert import insert_for

__all__ = [
    "IN_CHUNK",
    "chunks",
    "column_arrays",
    "insert_arrays",
    "insert_for",
    "is_postgres",
    "members",
]
