"""Topic names and Kafka header keys: their one home."""

from __future__ import annotations

from typing import Final

__all__ = [
    "DLQ_SUFFIX",
    "HEADER_ERROR_CLASS",
    "HEADER_ERROR_MESSAGE",
    "HEADER_ORIGINAL_OFFSET",
    "HEADER_ORIGINAL_PARTITION",
    "HEADER_ORIGINAL_TOPIC",
    "HEADER_RETRY_ATTEMPT",
    "HEADER_RETRY_DUE_MS",
    "dlq_topic",
    "retry_topic",
]

DLQ_SUFFIX: Final = ".dlq"

# Error context on dead-lettered records, like Kafka Connect's DLQ headers.
HEADER_ERROR_CLASS: Final = "wa_error_class"
HEADER_ERROR_MESSAGE: Final = "wa_error_message"
HEADER_ORIGINAL_TOPIC: Final = "wa_original_topic"
HEADER_ORIGINAL_PARTITION: Final = "wa_original_partition"
HEADER_ORIGINAL_OFFSET: Final = "wa_original_offset"
# Delayed retry: which attempt this is and when (epoch ms) it becomes due.
HEADER_RETRY_ATTEMPT: Final = "wa_retry_attempt"
HEADER_RETRY_DUE_MS: Final = "wa_retry_due_ms"


def retry_topic(base: str, attempt: int) -> str:
    """``wa.events`` + 1 → ``wa.events.retry.1``."""
    return f"{base}.retry.{attempt}"


def dlq_topic(base: str) -> str:
    """``wa.events`` → ``wa.events.dlq``."""
    return base + DLQ_SUFFIX
