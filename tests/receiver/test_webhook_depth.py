"""The JSON depth limit: refused with a clear 400 before normalizing, at the exact bound."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from wa_bridge.bus.embedded import EmbeddedBroker

from ._harness import Receiver, running_receiver
from ._samples import dumps, text_messages

pytestmark = pytest.mark.kafka

LIMIT = 24  # small, so the bound is cheap to reach


@pytest.fixture
async def receiver(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> AsyncIterator[Receiver]:
    async with running_receiver(
        broker.bootstrap, topic_factory("depth"), max_json_depth=LIMIT
    ) as r:
        yield r


def nested_to(total_depth: int) -> bytes:
    """A text-message webhook whose deepest value sits at ``total_depth`` levels."""
    payload: dict[str, Any] = text_messages("5215512345678", 1)
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    # object(1) entry[](2) {}(3) changes[](4) {}(5) value(6) messages[](7) message(8)
    nested: object = {}
    for _ in range(total_depth - 9):
        nested = [nested]
    message["extra"] = nested
    return orjson.dumps(payload)


def depth_of(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


async def test_a_body_at_the_limit_is_accepted(receiver: Receiver) -> None:
    body = nested_to(LIMIT)
    assert depth_of(orjson.loads(body)) == LIMIT
    response = await receiver.post(body)
    assert response.status_code == 200, response.text


async def test_one_level_deeper_is_a_clear_400(receiver: Receiver) -> None:
    body = nested_to(LIMIT + 1)
    assert depth_of(orjson.loads(body)) == LIMIT + 1
    response = await receiver.post(body)
    assert response.status_code == 400
    assert response.json() == {
        "error": "too_deep",
        "detail": f"JSON nesting deeper than {LIMIT} levels is refused",
    }


async def test_past_the_parsers_own_limit_is_the_same_400(receiver: Receiver) -> None:
    body = b'{"object":"whatsapp_business_account","entry":' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = await receiver.post(body)
    assert response.status_code == 400 and response.json()["error"] == "too_deep"


async def test_many_brackets_but_shallow_is_accepted(receiver: Receiver) -> None:
    body = dumps(text_messages("5215512345678", 40))  # > LIMIT brackets, depth 9
    assert body.count(b"{") > LIMIT
    response = await receiver.post(body)
    assert response.status_code == 200 and response.json() == {"events": 40}
