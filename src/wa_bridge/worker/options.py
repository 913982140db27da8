"""What the worker's parts read from the settings: small frozen options, one per part.

Deep classes take these, not the whole :class:`~wa_bridge.settings.Settings`, so a test
builds exactly the knobs it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from wa_bridge.settings import Settings

__all__ = ["HTTP_CRM_LINGER_MS", "BatchOptions", "WorkerOptions", "linger_ms_of"]

# The default linger of an HTTP CRM. Each batch costs a few requests whatever its size
# (HubSpot: notes created, notes updated, tickets), so requests per event fall with the
# time a batch gathers: at 100 events/s a 1 s linger takes ~100 events a batch where
# 200 ms took ~30 (bench.connectors: ~3× fewer requests), and a quiet stream still reaches
# the CRM within about a second and a half (#10: p99 < 2 s).
HTTP_CRM_LINGER_MS: Final = 1000


def linger_ms_of(settings: Settings) -> int:
    """``worker_linger_ms``, else the connector's default: the built-in SQL CRM writes in
    the worker's own transaction and has no request quota, so it never waits."""
    if settings.worker_linger_ms is not None:
        return settings.worker_linger_ms
    return 0 if settings.connector == "sql" else HTTP_CRM_LINGER_MS


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """What a :class:`~wa_bridge.worker.loop.Worker` reads from the settings."""

    main_topic: str
    retry_levels: int  # retry topics <main>.retry.1 … <main>.retry.<retry_levels>
    batch_max: int  # events per pipeline batch, across partitions
    linger_s: float  # how long ready events wait for more before their batch starts
    batches_in_flight: int  # batches applied at once (a partition is in one at most)
    partition_cap: int  # fetched-but-unfinished events per partition before it pauses
    shutdown_grace_s: float  # how long a stop waits for the batches in flight

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerOptions:
        return cls(
            main_topic=settings.kafka_topic,
            retry_levels=len(settings.retry_delays_s),
            batch_max=settings.worker_batch_max,
            linger_s=linger_ms_of(settings) / 1000,
            batches_in_flight=settings.worker_batches_in_flight,
            partition_cap=settings.worker_partition_cap,
            shutdown_grace_s=settings.shutdown_grace_s,
        )


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """What a :class:`~wa_bridge.worker.batch.BatchProcessor` reads from the settings."""

    base_topic: str  # the main topic; retry topics are named after it
    retry_delays_s: tuple[float, ...]  # one per retry topic, in order
    in_place_attempts: int  # tries of a batch before its events are split and routed
    phone_number_ids: frozenset[str]  # numbers served; empty serves all

    @classmethod
    def from_settings(cls, settings: Settings) -> BatchOptions:
        return cls(
            base_topic=settings.kafka_topic,
            retry_delays_s=tuple(settings.retry_delays_s),
            in_place_attempts=settings.retry_in_place_attempts,
            phone_number_ids=frozenset(settings.phone_number_ids),
        )
