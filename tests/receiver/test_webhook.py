"""The webhook endpoint against a real Kafka publisher on the session Tansu broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import orjson
import pytest

from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.normalize import normalize_webhook
from wa_bridge.receiver import WEBHOOK_PATH

from ._harness import OLD_SECRET, VERIFY_TOKEN, Receiver, event_ids, read_records, running_receiver
from ._samples import dumps, text_messages, two_contacts

pytestmark = pytest.mark.kafka


@pytest.fixture
async def receiver(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> AsyncIterator[Receiver]:
    async with running_receiver(broker.bootstrap, topic_factory("recv"), max_body_bytes=4096) as r:
        yield r


async def test_handshake_echoes_the_challenge(receiver: Receiver) -> None:
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    response = await receiver.client.get(WEBHOOK_PATH, params=params)
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.challenge": "1"},
    ],
)
async def test_handshake_refused(receiver: Receiver, params: dict[str, str]) -> None:
    response = await receiver.client.get(WEBHOOK_PATH, params=params)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert "1" not in response.text.split('"detail"')[0]


async def test_publishes_every_event_keyed_by_contact_in_order(receiver: Receiver) -> None:
    body = dumps(two_contacts())
    events = normalize_webhook(orjson.loads(body), received_at=datetime.now(UTC))
    response = await receiver.post(body)
    assert response.status_code == 200, response.text
    assert response.json() == {"events": len(events)} and len(events) == 4

    records = await read_records(receiver.bootstrap, receiver.topic, at_least=4)
    assert sorted(orjson.loads(r.value)["id"] for r in records) == sorted(e.id for e in events)
    for record in records:
        value = orjson.loads(record.value)
        assert record.key == (value.get("subject") or value["source"]).encode()
        headers = dict(record.headers)
        assert headers["ce_type"] == value["type"].encode()
        assert headers["ce_id"] == value["id"].encode()
        assert headers["content-type"].startswith(b"application/cloudevents+json")
    for key in {e.subject for e in events}:
        mine = [r for r in records if r.key == (key or "").encode()]
        assert len({r.partition for r in mine}) == 1
        mine.sort(key=lambda r: r.offset)
        got = [orjson.loads(r.value)["id"] for r in mine]
        assert got == [e.id for e in events if e.subject == key]


async def test_bad_or_missing_signature_is_401_and_nothing_is_published(
    receiver: Receiver,
) -> None:
    bad = dumps(text_messages("5215599990001", 1, tag="bad"))
    missing = await receiver.client.post(WEBHOOK_PATH, content=bad)
    assert missing.status_code == 401
    assert missing.json()["error"] == "bad_signature"
    wrong = await receiver.post(bad, secret=b"not-our-secret")
    assert wrong.status_code == 401
    garbage = await receiver.post(bad, signature="sha1=abc")
    assert garbage.status_code == 401

    good = dumps(text_messages("5215599990002", 1, tag="good"))
    assert (await receiver.post(good)).status_code == 200
    records = await read_records(receiver.bootstrap, receiver.topic, at_least=1)
    assert [orjson.loads(r.value)["id"] for r in records] == event_ids(good)


async def test_a_rotated_secret_still_verifies(receiver: Receiver) -> None:
    body = dumps(text_messages("5215599990003", 1, tag="old"))
    response = await receiver.post(body, secret=OLD_SECRET)
    assert response.status_code == 200, response.text


async def test_uppercase_hex_signature_verifies(receiver: Receiver) -> None:
    from wa_bridge.receiver import sign

    body = dumps(text_messages("5215599990004", 1, tag="upper"))
    signature = "sha256=" + sign(body, OLD_SECRET).removeprefix("sha256=").upper()
    assert (await receiver.post(body, signature=signature)).status_code == 200


async def test_malformed_json_is_400_with_the_reason(receiver: Receiver) -> None:
    response = await receiver.post(b'{"object": "whatsapp_business_account", "entry": [')
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"
    assert response.json()["detail"]  # orjson's reason, e.g. "unexpected end of data: ..."


@pytest.mark.parametrize(
    "payload",
    [
        {"object": "page", "entry": []},
        {"hello": "world"},
        [1, 2, 3],
        "whatsapp_business_account",
    ],
)
async def test_not_a_webhook_is_400_with_the_reason(receiver: Receiver, payload: object) -> None:
    response = await receiver.post(dumps(payload))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "not_a_webhook"
    assert body["detail"]


async def test_a_message_with_a_wamid_longer_than_the_store_keeps_is_set_aside(
    receiver: Receiver,
) -> None:
    """Published as it was, it failed the worker's batch on PostgreSQL (message ids are
    VARCHAR(200)); it is a whatsapp.unknown event saying why, the other message kept."""
    payload = text_messages("5215599990003", 2, tag="long")
    payload["entry"][0]["changes"][0]["value"]["messages"][1]["id"] = "wamid." + "A" * 250
    response = await receiver.post(dumps(payload))
    assert response.status_code == 200, response.text
    records = await read_records(receiver.bootstrap, receiver.topic, at_least=2)
    # (two partition keys: the contact's, and none for the set-aside item)
    by_type = {e["type"]: e for e in (orjson.loads(r.value) for r in records)}
    assert set(by_type) == {"whatsapp.message.received", "whatsapp.unknown"}
    aside = by_type["whatsapp.unknown"]
    assert aside["data"]["refused"].startswith(
        "whatsapp.message.received: a message or status id (wamid) has 256 characters"
    )


async def test_a_nul_in_a_text_is_published_as_a_replacement_mark(receiver: Receiver) -> None:
    """PostgreSQL stores no U+0000 (in text or JSON): published as sent, it failed the
    worker's batch. The message is kept, with U+FFFD where the NUL was."""
    payload = text_messages("5215599990004", 1, tag="nul")
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"][0]["text"]["body"] = "hola\x00mundo"
    value["contacts"][0]["profile"]["name"] = "Ana\x00"
    response = await receiver.post(dumps(payload))
    assert response.status_code == 200, response.text
    [record] = await read_records(receiver.bootstrap, receiver.topic, at_least=1)
    event = orjson.loads(record.value)
    assert event["data"]["text"]["body"] == "hola\ufffdmundo"
    assert event["data"]["contact"]["profile_name"] == "Ana\ufffd"
    assert b"\\u0000" not in record.value


async def test_413_by_content_length_without_reading(receiver: Receiver) -> None:
    body = b"x" * 5000  # over the 4096-byte cap of this fixture
    response = await receiver.post(body)
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


async def test_413_for_a_streamed_body_over_the_cap(receiver: Receiver) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 1000

    response = await receiver.client.post(
        WEBHOOK_PATH, content=chunks(), headers={"x-hub-signature-256": "sha256=" + "0" * 64}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_a_streamed_body_under_the_cap_is_read_whole(receiver: Receiver) -> None:
    from wa_bridge.receiver import sign

    body = dumps(text_messages("5215599990005", 2, tag="stream"))

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 100):
            yield body[i : i + 100]

    headers = {"x-hub-signature-256": sign(body, OLD_SECRET)}
    response = await receiver.client.post(WEBHOOK_PATH, content=chunks(), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"events": 2}


async def test_a_bad_content_length_is_400(receiver: Receiver) -> None:
    from wa_bridge.receiver import sign

    app = receiver.app
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": WEBHOOK_PATH,
        "query_string": b"",
        "headers": [
            (b"content-length", b"abc"),
            (b"x-hub-signature-256", sign(b"{}", b"x").encode()),
        ],
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 400


async def _raw_post(
    receiver: Receiver, messages: list[dict[str, object]], headers: list[tuple[bytes, bytes]]
) -> list[dict[str, object]]:
    """Drive the ASGI app directly with exactly these receive() messages."""
    pending = list(messages)
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return pending.pop(0)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": WEBHOOK_PATH,
        "query_string": b"",
        "headers": headers,
    }
    await receiver.app(scope, receive, send)  # type: ignore[arg-type]
    return sent


async def test_413_for_one_message_over_the_cap_without_content_length(
    receiver: Receiver,
) -> None:
    from wa_bridge.receiver import sign

    body = b"{" + b" " * 5000 + b"}"  # over the 4096-byte cap, in a single receive()
    sent = await _raw_post(
        receiver,
        [{"type": "http.request", "body": body, "more_body": False}],
        [(b"x-hub-signature-256", sign(body, OLD_SECRET).encode())],
    )
    assert sent[0]["status"] == 413
    assert orjson.loads(sent[1]["body"])["error"] == "body_too_large"  # type: ignore[arg-type]


async def test_a_client_gone_mid_body_is_400_and_nothing_is_published(
    receiver: Receiver,
) -> None:
    sent = await _raw_post(
        receiver,
        [
            {"type": "http.request", "body": b'{"object":', "more_body": True},
            {"type": "http.disconnect"},
        ],
        [(b"x-hub-signature-256", b"sha256=" + b"0" * 64)],
    )
    assert sent[0]["status"] == 400
    assert orjson.loads(sent[1]["body"])["error"] == "client_disconnected"  # type: ignore[arg-type]


async def test_the_200_answer_is_well_formed_for_each_count(receiver: Receiver) -> None:
    from wa_bridge.receiver import sign

    for count in (1, 2, 1):  # the second 1 comes from the per-count cache
        body = dumps(text_messages("5215599990007", count, tag=f"answer{count}"))
        sent = await _raw_post(
            receiver,
            [{"type": "http.request", "body": body, "more_body": False}],
            [(b"x-hub-signature-256", sign(body, OLD_SECRET).encode())],
        )
        assert sent[0]["status"] == 200
        answer: bytes = sent[1]["body"]  # type: ignore[assignment]
        assert orjson.loads(answer) == {"events": count}
        assert (b"content-length", str(len(answer)).encode()) in sent[0]["headers"]  # type: ignore[operator]


async def test_other_methods_are_405(receiver: Receiver) -> None:
    response = await receiver.client.put(WEBHOOK_PATH, content=b"{}")
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]


async def test_events_for_unknown_phone_numbers_are_still_published(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> None:
    topic = topic_factory("route")
    async with running_receiver(broker.bootstrap, topic, phone_number_ids=["999"]) as r:
        body = dumps(text_messages("5215599990006", 1, tag="route"))
        response = await r.post(body)
        assert response.status_code == 200
        records = await read_records(r.bootstrap, topic, at_least=1)
        assert [orjson.loads(x.value)["id"] for x in records] == event_ids(body)


async def test_health_and_readiness(receiver: Receiver) -> None:
    assert (await receiver.client.get("/healthz")).json()["status"] == "ok"
    ready = await receiver.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    metrics = await receiver.client.get("/metrics")
    assert b"wa_bridge_webhook_requests_total" in metrics.content


async def test_metrics_count_acknowledged_events(receiver: Receiver) -> None:
    from wa_bridge.metrics import REGISTRY

    def published() -> float:  # the counter is process-wide: compare before and after
        return REGISTRY.get_sample_value("wa_bridge_events_published_total") or 0.0

    before = published()
    body = dumps(text_messages("5215599990007", 3, tag="metrics"))
    assert (await receiver.post(body)).status_code == 200
    assert published() == before + 3
    exposed = (await receiver.client.get("/metrics")).text
    assert "wa_bridge_events_published_total" in exposed
