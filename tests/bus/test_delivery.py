"""A consumed record as the worker sees it: its headers, retry state and first position."""

from __future__ import annotations

from typing import Any

from aiokafka.structs import ConsumerRecord

from wa_bridge.bus.consumer import Delivery, retry_headers
from wa_bridge.bus.topics import HEADER_RETRY_ATTEMPT, HEADER_RETRY_DUE_MS


def record(headers: Any, *, topic: str = "wa.events", offset: int = 7) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(topic, 3, offset, 0, 0, b"+5255", b"{}", None, 5, 2, headers)


def test_a_first_try_keeps_its_headers_and_is_its_own_origin() -> None:
    headers = [("ce_type", b"whatsapp.message.received"), ("ce_id", b"wa:1")]
    d = Delivery.of(record(headers))
    assert d.headers == (("ce_type", b"whatsapp.message.received"), ("ce_id", b"wa:1"))
    assert all(type(pair) is tuple for pair in d.headers)
    assert (d.key, d.attempt, d.due_ms) == ("+5255", 0, 0)
    assert d.origin() == ("wa.events", 3, 7)


def test_a_retry_names_its_attempt_and_where_it_was_first_consumed() -> None:
    first = Delivery.of(record([("ce_id", b"wa:1")]))
    again = retry_headers(first, attempt=2, due_ms=1234)
    retried = Delivery.of(record(again, topic="wa.events.retry.2", offset=40))
    assert (retried.attempt, retried.due_ms) == (2, 1234)
    assert retried.origin() == ("wa.events", 3, 7)
    assert dict(retried.headers)[HEADER_RETRY_ATTEMPT] == b"2"
    assert dict(retried.headers)[HEADER_RETRY_DUE_MS] == b"1234"


def test_headers_of_another_shape_are_read_as_text_and_bytes() -> None:
    odd = [("ce_id", b"wa:1"), ["ce_type", bytearray(b"t")], ("x", None)]
    d = Delivery.of(record(odd))
    assert d.headers == (("ce_id", b"wa:1"), ("ce_type", b"t"), ("x", b""))
    assert all(type(v) is bytes and type(pair) is tuple for pair in d.headers for v in pair[1:])
