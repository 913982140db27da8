"""Kafka record headers of a canonical event (CloudEvents Kafka binding, ``ce_*`` keys).

The record value is always the structured JSON event; the headers repeat ``type`` and
``id`` so consumers and ops tools can route or look records up without parsing the value.
"""

from __future__ import annotations

from typing import Final

from wa_bridge.events import CanonicalEvent

__all__ = [
    "CONTENT_TYPE_CLOUDEVENTS_JSON",
    "HEADER_CE_ID",
    "HEADER_CE_TYPE",
    "HEADER_CONTENT_TYPE",
    "event_headers",
    "record_key",
]

HEADER_CE_TYPE: Final = "ce_type"
HEADER_CE_ID: Final = "ce_id"
HEADER_CONTENT_TYPE: Final = "content-type"
CONTENT_TYPE_CLOUDEVENTS_JSON: Final = b"application/cloudevents+json; charset=UTF-8"


def event_headers(event: CanonicalEvent) -> list[tuple[str, bytes]]:
    """The headers of the record that carries ``event``."""
    return [
        (HEADER_CE_TYPE, event.type.encode()),
        (HEADER_CE_ID, event.id.encode()),
        (HEADER_CONTENT_TYPE, CONTENT_TYPE_CLOUDEVENTS_JSON),
    ]


def record_key(event: CanonicalEvent) -> bytes:
    """The record key: the contact key known at receipt, else the event source.

    One contact's events share a key, so they stay in order on one partition.
    """
    return (event.subject or event.source).encode()
