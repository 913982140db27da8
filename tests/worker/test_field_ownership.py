"""Field ownership through the real worker pipeline into the built-in SQL CRM (#9).

An agent who corrects a contact's name in the CRM keeps the correction: the next WhatsApp
message, with another profile name, does not overwrite it (the shipped mappings write
names ``if_empty``). ``on_create`` fields keep the value of the message that created the
record. Runs on PostgreSQL and SQLite (the two SQL paths of the connector), with the
messages applied one batch at a time and all in one batch.

Also: a worker whose mapping names another connector than ``WA_BRIDGE_CONNECTOR`` refuses
to start (exit 2), pointing at the mapping's ``connector:`` line.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.connectors.sql import SqlCrmConnector
from wa_bridge.events import CanonicalEvent
from wa_bridge.normalize import normalize_webhook
from wa_bridge.operations import CrmOperation
from wa_bridge.settings import Settings
from wa_bridge.store import create_engine
from wa_bridge.worker.runner import open_worker

from .conftest import FAST_GROUP
from .sqlcrm import (
    RECEIVED_AT,
    SQL_MAPPING,
    WA_BRIDGE,
    publish,
    sql_settings,
    text_body,
    worker_env,
)

pytestmark = [pytest.mark.kafka]

CONTACT = 7


def _json(value: Any) -> Any:
    """A JSON column read with plain SQL: SQLite hands it back as text."""
    return json.loads(value) if isinstance(value, str) else value


def message(n: int, profile_name: str | None) -> CanonicalEvent:
    """Message ``n`` of one MX contact, sent under ``profile_name`` (None: no profile)."""
    body = text_body(n, CONTACT)
    person = body["entry"][0]["changes"][0]["value"]["contacts"][0]
    if profile_name is None:
        person.pop("profile", None)
    else:
        person["profile"] = {"name": profile_name}
    (event,) = normalize_webhook(body, received_at=RECEIVED_AT)
    return event


@pytest.fixture
def settings_for(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], store_url: str
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values = {"kafka_partitions": 1, **overrides}
        return sql_settings(broker.bootstrap, topic_factory("own"), store_url, **values)

    return make


async def sql(settings: Settings, statement: str, **params: Any) -> list[dict[str, Any]]:
    return await sql_rows(settings.database_url or "", statement, **params)


async def sql_rows(url: str, statement: str, **params: Any) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(statement), params)
            return [dict(row) for row in result.mappings()] if result.returns_rows else []
    finally:
        await engine.dispose()


async def deliver(settings: Settings, events: list[CanonicalEvent], *, together: bool) -> None:
    async with open_worker(settings, consumer_options=FAST_GROUP) as worker:
        for batch in [events] if together else [[e] for e in events]:
            await publish(settings, batch, create=False)
            stats = await worker.run_until_idle()
            assert stats.dead_lettered == 0


async def test_an_agents_edit_of_the_name_survives_the_next_message(
    settings_for: Callable[..., Settings],
) -> None:
    settings = settings_for()
    first = message(0, "🦄 Pao")
    async with open_worker(settings, consumer_options=FAST_GROUP) as worker:
        await publish(settings, [first])
        assert (await worker.run_until_idle()).delivered == 1
        (contact,) = await sql(settings, "SELECT * FROM crm_contacts")
        assert (contact["name"], contact["country"]) == ("🦄 Pao", "MX")
        (case,) = await sql(settings, "SELECT * FROM crm_cases")

        # The agent corrects the contact in the CRM ...
        await sql(
            settings,
            "UPDATE crm_contacts SET name = :name, country = :country",
            name="Paola Gutiérrez",
            country="ES",
        )
        # ... and the person writes again, under another profile name.
        await publish(settings, [message(1, "Pao ✨")], create=False)
        assert (await worker.run_until_idle()).delivered == 2  # counted since the start

    (after,) = await sql(settings, "SELECT * FROM crm_contacts")
    assert (after["name"], after["country"]) == ("Paola Gutiérrez", "ES")
    assert (after["wa_id"], after["phone_e164"]) == (contact["wa_id"], contact["phone_e164"])
    (case_after,) = await sql(settings, "SELECT * FROM crm_cases")
    assert case_after["opened_at"] == case["opened_at"]  # on_create: the first message's
    notes = await sql(settings, "SELECT note_key FROM crm_notes ORDER BY occurred_at")
    assert [n["note_key"] for n in notes] == [
        first.data["message_id"],
        message(1, None).data["message_id"],
    ]


OWNED = """
version: 1
extends: {base}
overrides:
  whatsapp.message.received:
    upsert_contact:
      fields:
        nickname: {{path: data.contact.profile_name, write: if_empty}}
        first_message: {{path: data.message_id, write: on_create}}
        last_message: {{path: data.message_id}}
"""


@pytest.mark.parametrize("together", [False, True], ids=["one-by-one", "one-batch"])
async def test_if_empty_fills_a_missing_value_once_and_on_create_keeps_the_first(
    settings_for: Callable[..., Settings], tmp_path: Path, together: bool
) -> None:
    mapping = tmp_path / "owned.yaml"
    mapping.write_text(OWNED.format(base=SQL_MAPPING), encoding="utf-8")
    settings = settings_for(mappings_path=str(mapping))
    events = [message(0, None), message(1, "Ana"), message(2, "Ana B")]
    ids = [str(e.data["message_id"]) for e in events]
    await deliver(settings, events, together=together)
    (contact,) = await sql(settings, "SELECT name, attributes FROM crm_contacts")
    assert contact["name"] == "Ana"  # the first name seen fills the empty name, once
    assert _json(contact["attributes"]) == {
        "nickname": "Ana",
        "first_message": ids[0],
        "last_message": ids[2],
    }


def test_a_mapping_for_another_connector_stops_the_worker_at_start(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings = sql_settings(
        broker.bootstrap, "wa-own-refused", f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    )
    env = {**worker_env(settings), "WA_BRIDGE_CONNECTOR": "rest"}
    env["WA_BRIDGE_CRM_BASE_URL"] = "http://127.0.0.1:9"
    done = subprocess.run([WA_BRIDGE, "worker"], env=env, capture_output=True, timeout=60)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert (
        f"{SQL_MAPPING}:11:1: connector: this mapping is for connector 'sql', but"
        " WA_BRIDGE_CONNECTOR is 'rest'"
    ) in err


def contact_op(key: str, index: int, modes: dict[str, Any], **fields: Any) -> CrmOperation:
    return CrmOperation(
        kind="upsert_contact",
        fields=fields,
        event_id=f"ev-{key}-{index}",
        index=index,
        contact_key=key,
        write_modes=modes,
    )


async def test_the_sql_crm_writes_each_field_by_its_mode(
    store_url: str, store_factory: Callable[..., Any]
) -> None:
    """Rows of one batch whose modes clash (one writes ``name`` always, another if_empty)
    and two ops on one record in one batch."""
    connector = SqlCrmConnector(await store_factory(store_url))
    await connector.apply(
        [contact_op(k, 0, {}, name=f"{k}0", nick=f"{k}0") for k in ("a", "b", "c")]
    )
    results = await connector.apply(
        [
            contact_op("a", 1, {"name": "if_empty", "nick": "if_empty"}, name="a1", nick="a1"),
            contact_op("b", 1, {}, name="b1", nick="b1"),
            contact_op("c", 1, {"name": "on_create", "nick": "on_create"}, name="c1", nick="c1"),
            contact_op("n", 1, {"name": "on_create", "nick": "on_create"}, name="n1", nick="n1"),
            # one record, two ops: if_empty after always keeps the first value
            contact_op("d", 1, {}, name="d1", nick="d1"),
            contact_op("d", 2, {"name": "if_empty", "nick": "if_empty"}, name="d2", nick="d2"),
            # always after if_empty takes the second
            contact_op("e", 1, {"name": "if_empty", "nick": "if_empty"}, name="e1", nick="e1"),
            contact_op("e", 2, {}, name="e2", nick="e2"),
            # a new record: an if_empty field fills the value the first op left out
            contact_op("f", 1, {}, phone_e164="+5215550000000"),
            contact_op("f", 2, {"name": "if_empty", "nick": "if_empty"}, name="f2", nick="f2"),
        ]
    )
    created = [r.created for r in results]
    assert created == [False, False, False, True, True, False, True, False, True, False]
    rows = await sql_rows(store_url, "SELECT contact_key, name, attributes FROM crm_contacts")
    got = {r["contact_key"]: (r["name"], _json(r["attributes"])["nick"]) for r in rows}
    assert got == {
        "a": ("a0", "a0"),
        "b": ("b1", "b1"),
        "c": ("c0", "c0"),
        "n": ("n1", "n1"),
        "d": ("d1", "d1"),
        "e": ("e2", "e2"),
        "f": ("f2", "f2"),
    }
