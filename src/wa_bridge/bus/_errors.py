"""The one translation of aiokafka's failures into ``BusUnavailable`` (worker side)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka.errors import KafkaError

from wa_bridge.errors import BusUnavailable

__all__ = ["kafka_errors"]


@contextmanager
def kafka_errors(what: str) -> Iterator[None]:
    """Raise ``BusUnavailable`` (chained) for any Kafka, socket or timeout failure."""
    try:
        yield
    except (KafkaError, OSError, TimeoutError) as exc:
        raise BusUnavailable(f"Kafka failed during {what}: {type(exc).__name__}") from exc
