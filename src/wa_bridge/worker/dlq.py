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
from datetime import datetime
from typing import Final

from wa_bridge.bus import topics
from wa_bridge.bus.record_producer import RecordProducer
from wa_bridge.errors import CrmRejected, DlqLimitExceeded, WaBridgeError
from wa_bridge.store.api import NewDeadLetter, Store
from wa_bridge.worker.retry import error_class_of

__all__ = ["MAX_MESSAGE_CHARS", "DeadLetterer", "DlqGuard", "dead_letter_of"]

MAX_MESSAGE_CHARS: Final = 500


def dead_letter_of(
    error: BaseException,
    *,
    event_id: str,
    event_type: str,
    contact_key: str | None,
    payload: bytes,
    attempts: int,
    failed_at: datetime,
    origin: tuple[str, int, int] | None = None,
    context: str = "",
) -> NewDeadLetter:
    """The one dead-letter record for an event that failed with ``error``.

    The error class comes from :func:`error_class_of`; the message is ours (a bug's
    message is prefixed with its type), cut to ``MAX_MESSAGE_CHARS``, and prefixed with
    ``context`` ("replay") when given; ``crm_error`` is the CRM's own message, when it
    gave one. ``origin`` is the topic, partition and offset the event was consumed from.
    """
    message = str(error) or type(error).__name__
    if not isinstance(error, WaBridgeError):
        message = f"{type(error).__name__}: {message}"
    if context:
        message = f"{context}: {message}"
    topic, partition, offset = origin if origin is not None else (None, None, None)
    return NewDeadLetter(
        event_id=event_id,
        event_type=event_type,
        contact_key=contact_key,
        payload=payload,
        error_class=error_class_of(error),
        error_message=message[:MAX_MESSAGE_CHARS],
        crm_error=error.crm_error if isinstance(error, CrmRejected) else None,
        attempts=attempts,
        failed_at=failed_at,
        topic=topic,
        partition=partition,
        offset=offset,
    )


class DeadLetterer:
    """Writes dead letters to ``<base>.dlq`` and the store."""

    def __init__(self, producer: RecordProducer, store: Store, *, base_topic: str) -> None:
        self.producer = producer
        self.store = store
        self.topic = topics.dlq_topic(base_topic)

    async def write(self, letters: Sequence[NewDeadLetter]) -> list[int]:
        """Produce then record every dead letter; returns the dead-letter row ids."""
        for letter in letters:
            await self.producer.send_and_wait(
                self.topic,
                value=letter.payload,
                key=letter.contact_key.encode() if letter.contact_key is not None else None,
                partition=None,  # by key, like the main topic
                headers=_headers(letter),
            )
        async with self.store.transaction() as tx:
            ids = [letter.event_id for letter in letters if letter.event_id]
            if ids:
                await tx.claim_events(ids)
                await tx.set_outcomes([(eid, "dead_lettered") for eid in ids])
            return await tx.add_dead_letters(letters)


def _headers(letter: NewDeadLetter) -> list[tuple[str, bytes]]:
    headers = [
        (topics.HEADER_ERROR_CLASS, letter.error_class.encode()),
        (topics.HEADER_ERROR_MESSAGE, letter.error_message.encode()),
    ]
    if letter.topic is not None:
        headers += [
            (topics.HEADER_ORIGINAL_TOPIC, letter.topic.encode()),
            (topics.HEADER_ORIGINAL_PARTITION, str(letter.partition).encode()),
            (topics.HEADER_ORIGINAL_OFFSET, str(letter.offset).encode()),
        ]
    return headers


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
