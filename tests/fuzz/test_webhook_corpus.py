"""10,000 broken webhook bodies through the real receiver and broker: no 500, nothing lost.

See :mod:`corpus` for the kinds of damage. For every body the answer must be the one the
kind calls for; for bodies that are accepted, every event their valid part gives on its
own must be on the topic afterwards (read back from Kafka, by id).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import orjson
import pytest

from receiver._harness import read_records, running_receiver
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.receiver.webhook import DEFAULT_MAX_JSON_DEPTH

from .corpus import Case, corpus, depth

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

MAX_BODY_BYTES = 256 * 1024
CONCURRENCY = 100
META_RETRIES = 5


def expected(case: Case) -> tuple[int, str | None]:
    if case.status:
        return case.status, case.error
    if len(case.body) > MAX_BODY_BYTES:
        return 413, "body_too_large"
    if depth(orjson.loads(case.body)) > DEFAULT_MAX_JSON_DEPTH:
        return 400, "too_deep"
    return 200, None


async def test_corpus_gets_no_500_and_loses_no_valid_event(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> None:
    cases = corpus()
    assert len(cases) == 10_000
    topic = topic_factory("fuzz")
    answers: list[tuple[int, dict[str, object]]] = []
    resent: list[Case] = []
    started = time.monotonic()
    async with running_receiver(
        broker.bootstrap, topic, max_body_bytes=MAX_BODY_BYTES, kafka_partitions=4
    ) as receiver:

        async def send(case: Case) -> tuple[int, dict[str, object]]:
            # Like Meta, send again on 503 (the broker did not ack in time: on a loaded
            # machine a publish can outlast its timeout); any other answer is final.
            for _ in range(META_RETRIES):
                response = await receiver.post(case.body)
                if response.status_code != 503:
                    break
                resent.append(case)
                await asyncio.sleep(0.5)
            return response.status_code, orjson.loads(response.content)

        for start in range(0, len(cases), CONCURRENCY):
            chunk = cases[start : start + CONCURRENCY]
            answers += await asyncio.gather(*(send(case) for case in chunk))
    wrong = [
        f"{case.kind}: got {status} {body.get('error')}, expected {expected(case)}"
        for case, (status, body) in zip(cases, answers, strict=True)
        if (status, body.get("error")) != expected(case)
    ]
    assert not wrong, f"{len(wrong)} wrong answers, e.g.:\n" + "\n".join(wrong[:10])
    published = sum(int(body["events"]) for status, body in answers if status == 200)  # type: ignore[call-overload]
    records = await read_records(broker.bootstrap, topic, at_least=published, timeout_s=60)
    on_topic = {orjson.loads(r.value)["id"] for r in records}
    # A body sent again after a 503 may sit on the topic twice (the worker's ledger drops
    # the copy); without a resend the count is exact.
    assert len(records) == published if not resent else len(records) >= published
    lost = [
        (case.kind, sorted(case.valid_ids - on_topic)[:3])
        for case, (status, _) in zip(cases, answers, strict=True)
        if status == 200 and not case.valid_ids <= on_topic
    ]
    assert not lost, f"valid events missing from the topic: {lost[:10]}"
    statuses = Counter(f"{c.kind}:{s}" for c, (s, _) in zip(cases, answers, strict=True))
    print(f"\n{len(cases)} bodies in {time.monotonic() - started:.1f} s, {published} events")
    print(dict(sorted(statuses.items())))
