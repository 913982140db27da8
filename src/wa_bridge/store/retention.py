"""The retention job: forget ledger ids and closed dead letters older than the window.

The ledger window must outlast Meta's webhook retries (up to 7 days; settings enforce
``dedup_retention_days >= 8``), else a late retry writes twice. Open dead letters are
never purged: someone has to look at them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

__all__ = ["Purged", "purge_expired"]


@dataclass(frozen=True, slots=True)
class Purged:
    ledger: int
    dead_letters: int


class Purgeable(Protocol):
    async def purge_ledger(self, older_than: datetime) -> int: ...

    async def purge_dead_letters(self, older_than: datetime) -> int: ...


async def purge_expired(
    store: Purgeable, *, now: datetime, ledger_days: int, dead_letter_days: int
) -> Purged:
    """Delete what is older than the windows; may raise StoreUnavailable. Safe to rerun."""
    return Purged(
        ledger=await store.purge_ledger(now - timedelta(days=ledger_days)),
        dead_letters=await store.purge_dead_letters(now - timedelta(days=dead_letter_days)),
    )
