"""POST /consents on the real receiver (build_receiver): roles, what is refused and why,
the event on Kafka (validated against its schema), and the audit row."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from jsonschema import Draft202012Validator

from receiver.test_inbox import (
    INBOX_TOKEN,
    OPERATOR_TOKEN,
    VIEWER_TOKEN,
    Inbox,
    running_inbox,
)
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.ops.consents import CONSENTS_PATH
from wa_bridge.store import create_engine
from wa_bridge.store.tables import audit_log

pytestmark = pytest.mark.kafka

SCHEMA = orjson.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "consent.recorded.json").read_bytes()
)


def evidence(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "form-42",
        "contact": {"phone": "+52 1 55 1234 5678"},
        "captured_via": "web_form",
        "text_shown": "Acepto recibir ofertas por WhatsApp.",
        "time": "2026-06-10T16:00:00-06:00",
        "source": "landing/invierno26",
    }
    body.update(changes)
    return body


@pytest.fixture
async def receiver(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], tmp_path: Path
) -> AsyncIterator[tuple[Inbox, str]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    async with running_inbox(broker.bootstrap, topic_factory("consents"), database_url=url) as r:
        yield r, url


async def post(inbox: Inbox, body: object, token: str | None) -> Any:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return await inbox.client.post(CONSENTS_PATH, content=content, headers=headers)


async def test_an_operator_records_evidence_once_on_kafka_and_audited(
    receiver: tuple[Inbox, str],
) -> None:
    inbox, url = receiver
    answer = await post(inbox, evidence(), OPERATOR_TOKEN)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"id": "consent:form-42"}
    [record] = await inbox.records(1)
    event = record["value"]
    Draft202012Validator(SCHEMA).validate(event)
    assert (event["type"], event["time"], event["subject"]) == (
        "consent.recorded",
        "2026-06-10T22:00:00Z",
        "+525512345678",
    )
    data = event["data"]
    assert (data["status"], data["purpose"], data["channel"]) == ("opt_in", "marketing", "whatsapp")
    assert data["recorded_by"] and OPERATOR_TOKEN not in data["recorded_by"]  # a hash
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(audit_log))).mappings().all()
    finally:
        await engine.dispose()
    [row] = [r for r in rows if r["action"] == "consent.record"]
    assert (row["role"], row["target"]) == ("operator", "consent:form-42")
    assert row["detail"] == "opt_in marketing via web_form"
    assert "5512345678" not in str(dict(row))  # the audit names no phone


@pytest.mark.parametrize(
    ("token", "status"),
    [(None, 401), ("not-a-known-token-at-all", 401), (VIEWER_TOKEN, 403), (INBOX_TOKEN, 403)],
)
async def test_only_the_operator_role_may_record(
    receiver: tuple[Inbox, str], token: str | None, status: int
) -> None:
    inbox, _ = receiver
    answer = await post(inbox, evidence(), token)
    assert answer.status_code == status, answer.text


@pytest.mark.parametrize(
    ("body", "error", "says"),
    [
        (b"{nope", "malformed_json", ""),
        (evidence(text_shown=None), "invalid_consent", "text_shown"),
        (evidence(status="maybe"), "invalid_consent", "status"),
        (evidence(time="2026-06-10 16:00"), "invalid_consent", "time: must be RFC 3339"),
        (evidence(contact={}), "invalid_consent", "contact: needs at least one of"),
        (evidence(captured_via="Web Form!"), "invalid_consent", "captured_via"),
        (evidence(extra=1), "invalid_consent", "extra: is not a known field"),
        # the store keeps consent:<id> and the CRM key built from it in 200 characters,
        # Meta's ids (and the scopes built from them) in 200: these failed the batch
        (evidence(id="x" * 181), "invalid_consent", "id: must have at most 180 characters"),
        (evidence(waba_id="3" * 129), "invalid_consent", "waba_id: must have at most 128"),
        (evidence(phone_number_id="4" * 129), "invalid_consent", "phone_number_id: must have"),
        (evidence(time="0001-01-01T00:00:00+01:00"), "invalid_consent", "time: is out of range"),
        (evidence(source="web\x00"), "invalid_consent", "source: must not contain the NUL"),
    ],
)
async def test_a_bad_record_is_a_400_saying_why(
    receiver: tuple[Inbox, str], body: object, error: str, says: str
) -> None:
    inbox, _ = receiver
    answer = await post(inbox, body, OPERATOR_TOKEN)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == error and says in answer.json()["detail"]
    assert "5512345678" not in answer.text  # never echoes the input
