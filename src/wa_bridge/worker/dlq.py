"""Dead-lettering: the DLQ topic record plus the ``dead_letters`` row, and the DLQ guard.

A dead letter is written in two places: ``<topic>.dlq`` (for stream tools; headers carry
the error context and where the record came from) and the ``dead_letters`` table (for
``wa-bridge dlq``). The Kafka record goes first: if the row then fails, the event is
consumed again and dead-lettered again (the row appends the failure), so neither is lost.
The same transaction marks the event ``dead_lettered`` in the ledger, so a later copy of
the same webhook is skipped instead of filling the DLQ twice.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

from wa_bridge.bus.topics import (
    HEADER_ERROR_CLASS,
    HEADER_ERROR_MESSAGE,
    HEADER_ORIGINAL_OFFSET,
    HEADER_ORIGINAL_PARTITION,
    HEADER_ORIGINAL_TOPIC,
    dlq_topic,
)
from wa_bridge.errors import CrmRejected, DlqLimitExceeded, WaBridgeError
from wa_bridge.store.api import NewDeadLetter, Store

__all__ = ["DeadLetterer", "DlqGuard", "Failure", "RecordProducer"]

MAX_MESSAGE_CHARS: Final = 500


class RecordProducer(Protocol):
    """The slice of aiokafka's producer the worker uses (awaits the broker's ack)."""

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> object: ...


@dataclass(frozen=True, slots=True)
class Failure:
    """An event that will be dead-lettered, with where it came from and why."""

    event_id: str
    event_type: str
    key: str | None
    payload: bytes
    error_class: str
    error_message: str
    crm_error: str | None
    attempts: int
    topic: str
    partition: int
    offset: int

    @classmethod
    def of(
        cls,
        error: BaseException,
        *,
        error_class: str,
        event_id: str,
        event_type: str,
        key: str | None,
        payload: bytes,
        attempts: int,
        topic: str,
        partition: int,
        offset: int,
    ) -> Failure:
        message = str(error) or type(error).__name__
        if not isinstance(error, WaBridgeError):
            message = f"{type(error).__name__}: {message}"
        return cls(
            event_id=event_id,
            event_type=event_type,
            key=key,
            payload=payload,
            error_class=error_class,
            error_message=message[:MAX_MESSAGE_CHARS],
            crm_error=error.crm_error if isinstance(error, CrmRejected) else None,
            attempts=attempts,
            topic=topic,
            partition=partition,
            offset=offset,
        )


class DeadLetterer:
    """Writes dead letters to ``<base>.dlq`` and the store."""

    def __init__(self, producer: RecordProducer, store: Store, *, base_topic: str) -> None:
        self.producer = producer
        self.store = store
        self.topic = dlq_topic(base_topic)

    async def write(self, failures: Sequence[Failure]) -> list[int]:
        """Produce then record every failure; returns the dead-letter row ids."""
        for f in failures:
            await self.producer.send_and_wait(
                self.topic,
                value=f.payload,
                key=f.key.encode() if f.key is not None else None,
                headers=[
                    (HEADER_ERROR_CLASS, f.error_class.encode()),
                    (HEADER_ERROR_MESSAGE, f.error_message.encode()),
                    (HEADER_ORIGINAL_TOPIC, f.topic.encode()),
                    (HEADER_ORIGINAL_PARTITION, str(f.partition).encode()),
                    (HEADER_ORIGINAL_OFFSET, str(f.offset).encode()),
                ],
            )
        now = datetime.now(UTC)
        async with self.store.transaction() as tx:
            ids = [f.event_id for f in failures if f.event_id]
            if ids:
                await tx.claim_events(ids)
                await tx.set_outcomes([(eid, "dead_lettered") for eid in ids])
            return await tx.add_dead_letters(
                [
                    NewDeadLetter(
                        event_id=f.event_id,
                        event_type=f.event_type,
                        contact_key=f.key,
                        payload=f.payload,
                        error_class=f.error_class,
                        error_message=f.error_message,
                        crm_error=f.crm_error,
                        attempts=f.attempts,
                        failed_at=now,
                        topic=f.topic,
                        partition=f.partition,
                        offset=f.offset,
                    )
                    for f in failures
                ]
            )


@dataclass
class DlqGuard:
    """Trips when more than ``max_ratio`` of the last ``window`` outcomes were dead letters.

    Like arroyo's DlqLimit: after a bad deploy, or with a CRM that rejects everything,
    stopping is better than dead-lettering all traffic. Needs a full window to trip.
    """

    window: int = 200
    max_ratio: float = 0.5
    _recent: deque[bool] = field(default_factory=deque, repr=False)
    _dead: int = 0

    def record(self, is_dead_letter: bool) -> None:
        self._recent.append(is_dead_letter)
        self._dead += is_dead_letter
        if len(self._recent) > self.window:
            self._dead -= self._recent.popleft()

    @property
    def is_tripped(self) -> bool:
        return len(self._recent) >= self.window and self._dead > self.max_ratio * self.window

    def check(self) -> None:
        if self.is_tripped:
            raise DlqLimitExceeded(
                f"{self._dead} of the last {len(self._recent)} events were dead-lettered "
                f"(limit {self.max_ratio:.0%}): stopped consuming; fix the cause (mapping, "
                "CRM credentials, deploy), then restart the worker and replay with "
                "`wa-bridge dlq replay --filter`"
            )
