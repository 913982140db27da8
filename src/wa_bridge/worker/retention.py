"""The worker's periodic retention job: purge expired ledger ids and closed dead letters.

Runs beside the consumer in the worker's TaskGroup every ``retention_interval_s``; every
worker of a group may run it (the deletes are idempotent). A failure is logged and tried
again next time: retention never stops event processing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from wa_bridge.clock import SYSTEM_CLOCK, Clock, sleep_unless_stopped
from wa_bridge.log import get_logger
from wa_bridge.settings import Settings
from wa_bridge.store.api import Store
from wa_bridge.store.retention import RetentionWindows, purge_expired

__all__ = ["RetentionOptions", "run_retention"]

log = get_logger("worker.retention")


@dataclass(frozen=True, slots=True)
class RetentionOptions:
    """What the retention job reads from the settings."""

    interval_s: float  # between purges; 0 turns the job off
    # days to keep, per target (store.retention): the ledger, dead letters, notes…
    windows: RetentionWindows

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionOptions:
        return cls(settings.retention_interval_s, RetentionWindows.from_settings(settings))


async def run_retention(
    store: Store,
    options: RetentionOptions,
    stop: asyncio.Event,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Purge once now, then every interval, until ``stop`` is set (interval 0: never)."""
    interval_s = options.interval_s
    if interval_s <= 0:
        return
    while not stop.is_set():
        try:
            purged = await purge_expired(store, now=clock.now(), windows=options.windows)
        except Exception as exc:  # next round tries again; processing goes on
            # the traceback says where (its messages made safe by the log's renderer): a
            # bug here would otherwise repeat every round with nothing but a class name
            log.warning("retention_failed", error_class=type(exc).__name__, exc_info=exc)
        else:
            if purged.total:
                log.info("retention_purged", **{k: v for k, v in purged.counts.items() if v})
        await sleep_unless_stopped(clock, interval_s, stop)
