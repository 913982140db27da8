"""Invariants of the webhook endpoint, with hypothesis, against the real app and broker.

- A validly signed body, however odd, gets 200, 400 or 413: never a 500.
- Any single flipped byte of a signed body fails the signature: 401.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from wa_bridge.bus.embedded import EmbeddedBroker

from ._harness import Receiver, running_receiver
from ._samples import dumps, text_messages, two_contacts

pytestmark = pytest.mark.kafka

MAX_BODY_BYTES = 2048
PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
async def receiver(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str]
) -> AsyncIterator[Receiver]:
    async with running_receiver(
        broker.bootstrap, topic_factory("props"), max_body_bytes=MAX_BODY_BYTES
    ) as r:
        yield r


@pytest.fixture(scope="module")
def topic_factory() -> Callable[[str], str]:
    import uuid

    return lambda prefix: f"{prefix}.{uuid.uuid4().hex[:12]}"


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
# Keys Meta uses, so random values land where the normalizer looks.
meta_keys = st.sampled_from(
    [
        "object", "entry", "id", "changes", "field", "value", "messages", "statuses",
        "contacts", "metadata", "phone_number_id", "wa_id", "user_id", "from", "type",
        "timestamp", "text", "body", "errors", "time", "recipient_id", "status",
        "message_echoes", "user_preferences", "user_id_update", "event",
    ]
)  # fmt: skip
meta_like = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(meta_keys, inner, max_size=5),
    max_leaves=30,
)
fields = st.sampled_from(
    [
        "messages", "smb_message_echoes", "user_preferences", "user_id_update",
        "message_template_status_update", "message_template_quality_update",
        "template_category_update", "phone_number_quality_update", "account_update",
        "history", "calls", "something_new",
    ]
)  # fmt: skip


@st.composite
def webhook_envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """Envelopes Meta could send, with random contents in each change value."""
    changes = draw(
        st.lists(
            st.fixed_dictionaries({"field": fields, "value": meta_like}) | meta_like, max_size=3
        )
    )
    entry = draw(st.fixed_dictionaries({"id": st.text(max_size=8), "changes": st.just(changes)}))
    return {"object": "whatsapp_business_account", "entry": [entry]}


@PROPERTY_SETTINGS
@given(body=st.binary(max_size=3 * MAX_BODY_BYTES))
async def test_random_bytes_never_500(receiver: Receiver, body: bytes) -> None:
    response = await receiver.post(body)
    assert response.status_code in {200, 400, 413}, response.text


@PROPERTY_SETTINGS
@given(payload=json_values | meta_like)
async def test_random_json_never_500(receiver: Receiver, payload: object) -> None:
    response = await receiver.post(dumps(payload))
    assert response.status_code in {200, 400, 413}, response.text


@PROPERTY_SETTINGS
@given(payload=webhook_envelopes())
async def test_webhook_shaped_json_never_500(receiver: Receiver, payload: object) -> None:
    response = await receiver.post(dumps(payload))
    event(f"status {response.status_code}")
    assert response.status_code in {200, 400, 413}, response.text


SIGNED_BODIES = [dumps(text_messages("5215512340000", 1)), dumps(two_contacts())]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
async def test_any_flipped_byte_fails_the_signature(
    receiver: Receiver, data: st.DataObject
) -> None:
    body = data.draw(st.sampled_from(SIGNED_BODIES))
    index = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    from wa_bridge.receiver import sign

    signature = sign(body, b"current-app-secret")
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    response = await receiver.post(tampered, signature=signature)
    assert response.status_code == 401
