"""Two records of the company's CRM hold one customer's number: the worker adopts the more
recently modified one, and ``wa-bridge identity adoptions`` shows the admin both, so the
unused one can be merged or told apart in the CRM. Through the whole pipeline (signed
webhook → receiver → Tansu → worker → the vendor's strict stand-in), on HubSpot and
Salesforce; the listing is masked unless asked (and audited either way).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from connectors.conftest import (  # noqa: F401 - fixtures
    checked,
    hubspot_session,
    salesforce_session,
)
from e2e.test_crm_admin_view import by_id, crm, seed_contact, synced  # noqa: F401 - fixture
from e2e.test_crm_adoption import Vendor, text_webhook, wamid
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.cli.main import app
from wa_bridge.store import open_store
from wa_bridge.store.tables import audit_log

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

PERSON = "5511999990001"


async def cli(pg_url: str, *args: str) -> Result:
    """``wa-bridge`` as an admin runs it, beside the test's event loop."""
    env = {"WA_BRIDGE_DATABASE_URL": pg_url, "WA_BRIDGE_CONNECTOR": "sql", "USER": "ana"}
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def audited(pg_url: str) -> list[tuple[str, str, str]]:
    store = await open_store(pg_url)
    try:
        async with store.engine.connect() as conn:
            a = audit_log.c
            rows = await conn.execute(select(a.action, a.actor, a.target).order_by(a.id))
            return [(str(action), str(actor), str(target)) for action, actor, target in rows]
    finally:
        await store.aclose()


async def test_the_admin_sees_the_record_a_shared_number_left_unused(
    crm: Vendor,  # noqa: F811 - the fixture
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    pg_url: str,
) -> None:
    vendor = crm
    older = seed_contact(vendor, "Rita", "Souza", phone="+55 11 99999-0001")
    newer = seed_contact(vendor, "Rita", "Souza Lima", phone="+5511999990001")
    async with synced(vendor, broker, topic_factory("shared"), pg_url) as run:
        await run.post(text_webhook(PERSON, "Rita", 1))
    contacts = by_id(vendor)
    assert sorted(contacts) == sorted([older, newer])  # no third record
    assert vendor.contact_of_note(wamid(PERSON, 1)) == newer  # the newer one adopted
    assert contacts[older].get(vendor.key_field) in (None, "")  # the older one unused

    listed = await cli(pg_url, "identity", "adoptions", "--json")
    assert listed.exit_code == 0, listed.output
    [item] = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert (item["adopted"], item["not_adopted"], item["complete"]) == (newer, [older], True)
    assert (item["rule"], item["candidates"]) == ("phone", 2)
    assert PERSON not in listed.stdout and "99999" not in listed.stdout  # phone masked
    assert item["phone"].startswith("+55") and "(h:" in item["phone"]

    plain = await cli(pg_url, "identity", "adoptions")
    assert plain.exit_code == 0, plain.output
    [line] = plain.stdout.splitlines()
    assert f"adopted {item['kind']} {newer}; not adopted {older}" in line
    assert "1 adoption(s)" in plain.stderr

    shown = await cli(pg_url, "identity", "adoptions", "--show-identifiers", "--json")
    assert orjson.loads(shown.stdout)["phone"] == f"+{PERSON}"

    assert await audited(pg_url) == [
        ("identity.adoptions", "ana", "crm_records"),
        ("identity.adoptions", "ana", "crm_records"),
        ("identity.adoptions.reveal", "ana", "crm_records"),
    ]
