"""Broker down → 503 with Retry-After; broker back (same port, empty) → 200, nothing lost.

Uses its own EmbeddedBroker: stopping the session broker would break other tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from wa_bridge.bus.embedded import EmbeddedBroker

from ._harness import Receiver, event_ids, read_records, running_receiver
from ._samples import dumps, text_messages

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RECOVERY_WAIT_S = 30.0


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def post_until(receiver: Receiver, body: bytes, status: int) -> list[int]:
    """POST ``body`` until it gets ``status``; return every status seen on the way."""
    seen: list[int] = []
    async with asyncio.timeout(RECOVERY_WAIT_S):
        while True:
            seen.append((await receiver.post(body)).status_code)
            if seen[-1] == status:
                return seen
            await asyncio.sleep(0.1)


async def ready_until(receiver: Receiver, status: int) -> None:
    async with asyncio.timeout(RECOVERY_WAIT_S):
        while True:  # polled: readiness has no event to wait on
            if (await receiver.client.get("/readyz")).status_code == status:
                return
            await asyncio.sleep(0.05)


async def test_503_while_down_then_recovers_without_loss(
    own_broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> None:
    topic = topic_factory("outage")
    async with running_receiver(own_broker.bootstrap, topic, publish_timeout_s=1.0) as receiver:
        before = dumps(text_messages("5215577770001", 2, tag="before"))
        assert (await receiver.post(before)).status_code == 200

        await own_broker.astop()
        during = dumps(text_messages("5215577770002", 2, tag="during"))
        response = await receiver.post(during)
        assert response.status_code == 503
        assert response.json()["error"] == "bus_unavailable"
        assert int(response.headers["retry-after"]) > 0
        await ready_until(receiver, 503)
        assert (await receiver.post(during)).status_code == 503

        await own_broker.astart()  # same port, empty (memory storage)
        seen = await post_until(receiver, during, 200)
        assert set(seen) <= {503, 200}
        await ready_until(receiver, 200)
        after = dumps(text_messages("5215577770003", 3, tag="after"))
        assert (await receiver.post(after)).status_code == 200

        # The restarted broker lost what it had (memory storage); everything answered 200
        # since then must be on the topic.
        wanted = set(event_ids(during) + event_ids(after))
        assert len(wanted) == 5
        records = await read_records(own_broker.bootstrap, topic, at_least=len(wanted))
        got = {orjson.loads(r.value)["id"] for r in records}
        assert wanted <= got
