"""``wa-bridge identity report`` and ``merge`` through the real pipeline (signed webhook →
receiver → Tansu → worker → SQL CRM, issue 9): each way one person ends up as two contacts
(README "Identity") is sent as webhooks (or, for records made before a rule existed, as
the events the previous release published), the report finds the pair with its evidence,
and after the merge the next message from either identity lands on the kept contact.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import os
from collections.abc import Callable

import orjson
import pytest

from e2e.test_identity_scenarios import crm_rows, message_ids, pipeline
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.events import CanonicalEvent
from wa_bridge.ops import identity as ops
from wa_bridge.settings import Settings
from wa_bridge.store import open_store
from wa_bridge.store.identity_report import Lookalike, find_lookalikes
from worker.sqlcrm import WA_BRIDGE, publish, sample_body, sample_events

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def lookalikes(url: str) -> list[Lookalike]:
    store = await open_store(url)
    try:
        async with store.engine.connect() as conn:
            return await find_lookalikes(conn)
    finally:
        await store.aclose()


async def merge(url: str, keep: str, other: str) -> ops.MergeOutcome:
    store = await open_store(url)
    try:
        return await ops.merge(
            Settings(connector="sql", database_url=url), store, keep, other, actor="e2e"
        )
    finally:
        await store.aclose()


def renamed(name: str, n: int) -> bytes:
    """Sample ``name`` as a new message (ids suffixed with ``n``): the person writes again."""
    body = sample_body(f"{name}.json")
    for message in body["entry"][0]["changes"][0]["value"]["messages"]:
        message["id"] = f"{message['id']}.again{n}"
    return orjson.dumps(body)


def legacy(event: CanonicalEvent, phone_e164: str, n: int) -> CanonicalEvent:
    """``event`` as a release before BSUIDs and the AR/MX folding published it: the user
    known by their number only, in the form Meta sent, as E.164 (a new message id)."""
    data = copy.deepcopy(event.data)
    kept = {k: v for k, v in data["contact"].items() if k in ("profile_name", "country")}
    data["contact"] = kept | {
        "key": phone_e164,
        "phone_e164": phone_e164,
        "wa_id": phone_e164.lstrip("+"),
    }
    data["message_id"] = f"{data['message_id']}.old{n}"
    return dataclasses.replace(event, id=f"{event.id}.old{n}", data=data, subject=phone_e164)


async def test_notice_after_the_new_identity_wrote_is_reported_and_merged(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], sql_crm_url: str
) -> None:
    async with pipeline(broker, topic_factory("merge"), sql_crm_url) as run:
        for name in ("1_before", "2_new_first", "3_notice", "4_after"):
            await run.post(f"identity_ar_late_{name}")
        contacts, landed = await crm_rows(sql_crm_url)
        assert len(contacts) == 2
        person = landed[message_ids("identity_ar_late_1_before")[0]]
        stray = landed[message_ids("identity_ar_late_2_new_first")[0]]
        [pair] = await lookalikes(sql_crm_url)
        assert (pair.keep.contact_id, pair.other.contact_id) == (person, stray)
        assert [e.rule for e in pair.evidence] == ["orphaned", "orphaned", "moved"]
        assert pair.other.current == ()  # the stray contact holds no identifier any more

        outcome = await merge(sql_crm_url, person, stray)
        assert outcome.merge_id is not None
        await run.receiver.post(renamed("identity_ar_late_2_new_first", 1))  # the new identity
        await run.post()
    contacts, landed = await crm_rows(sql_crm_url)
    assert [c["contact_key"] for c in contacts] == [person]  # one contact, every note on it
    assert set(landed.values()) == {person} and len(landed) == 5
    assert await lookalikes(sql_crm_url) == []


async def test_phone_only_contact_later_linked_to_a_bsuid(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], sql_crm_url: str
) -> None:
    status = sample_body("identity_cl_bsuid_then_phone_2.json")
    value = status["entry"][0]["changes"][0]["value"]
    value.pop("contacts")
    value["statuses"] = [
        {
            "id": "wamid.E2E.TEMPLATE.CL1",
            "status": "sent",
            "timestamp": "1781300900",
            "recipient_id": "56960005001",
        }
    ]
    del value["messages"]
    async with pipeline(broker, topic_factory("merge"), sql_crm_url) as run:
        await run.receiver.post(orjson.dumps(status))  # a template to the number
        await run.post("identity_cl_bsuid_then_phone_1")  # the username user writes
        await run.post("identity_cl_bsuid_then_phone_2")  # then with their number
        contacts, landed = await crm_rows(sql_crm_url)
        assert len(contacts) == 2
        by_bsuid = landed[message_ids("identity_cl_bsuid_then_phone_1")[0]]
        [pair] = await lookalikes(sql_crm_url)
        assert pair.keep.contact_id == by_bsuid
        assert [e.rule for e in pair.evidence] == ["orphaned", "moved"]
        await merge(sql_crm_url, by_bsuid, pair.other.contact_id)
        await run.post("identity_cl_bsuid_then_phone_2")  # redelivered: nothing new
    contacts, landed = await crm_rows(sql_crm_url)
    assert [c["contact_key"] for c in contacts] == [by_bsuid]
    assert set(landed.values()) == {by_bsuid}
    assert "wamid.E2E.TEMPLATE.CL1" in landed  # the template's note moved with the merge


@pytest.mark.parametrize(
    ("sample", "old_form"),
    [("identity_ar_variants_1_text", "+541160002001"), ("identity_mx_variants_1_text", None)],
    ids=["AR 9-less", "MX with the 1"],
)
async def test_records_made_before_the_folding_rule(
    sample: str,
    old_form: str | None,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    sql_crm_url: str,
) -> None:
    [event] = sample_events(f"{sample}.json")
    e164 = str(event.data["contact"]["phone_e164"])
    old = old_form or "+521" + e164.removeprefix("+52")
    async with pipeline(broker, topic_factory("merge"), sql_crm_url) as run:
        settings = Settings(kafka_bootstrap=run.receiver.bootstrap, kafka_topic=run.receiver.topic)
        await publish(settings, [legacy(event, old, 1)], create=False)
        await run.post()
        await run.post(sample)
        contacts, _ = await crm_rows(sql_crm_url)
        assert len(contacts) == 2  # one person, two CRM contacts
        [pair] = await lookalikes(sql_crm_url)
        [evidence] = pair.evidence
        assert (evidence.rule, evidence.keep_value, evidence.other_value) == (
            "phone_variant",
            e164,
            old,
        )
        keep = pair.keep.contact_id
        await merge(sql_crm_url, keep, pair.other.contact_id)
        await publish(settings, [legacy(event, old, 2)], create=False)  # still in a retry topic
        await run.receiver.post(renamed(sample, 3))  # and the person writes again
        await run.post()
    contacts, landed = await crm_rows(sql_crm_url)
    assert [c["contact_key"] for c in contacts] == [keep]
    assert set(landed.values()) == {keep} and len(landed) == 4


async def test_the_cli_masks_identifiers_unless_asked_and_audits(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], sql_crm_url: str
) -> None:
    async with pipeline(broker, topic_factory("merge"), sql_crm_url) as run:
        for name in ("1_before", "2_new_first", "3_notice"):
            await run.post(f"identity_ar_late_{name}")
    masked = await wa_bridge(sql_crm_url, "identity", "report")
    assert "5491160010002" not in masked and "AR.9100000000000000112" not in masked
    assert "+54•••••••••02 (h:" in masked and "orphaned" in masked
    shown = await wa_bridge(sql_crm_url, "identity", "report", "--json", "--show-identifiers")
    [pair] = [orjson.loads(line) for line in shown.splitlines()]
    assert pair["other"]["identifiers"] == []  # the stray contact holds none now
    assert "+5491160010002" in {e["keep_value"] for e in pair["evidence"]}
    merged = await wa_bridge(sql_crm_url, *pair["command"].split()[1:], "--actor", "ops-ana")
    assert merged.startswith("merge 1: ") and "undo: wa-bridge identity unmerge 1" in merged
    audit = await wa_bridge(sql_crm_url, "audit", "list", "--json")
    actions = [(r["action"], r["actor"]) for r in map(orjson.loads, audit.splitlines())]
    assert [a for a, _ in actions] == [
        "identity.merge",
        "identity.report.reveal",
        "identity.report",
    ]
    assert actions[0][1] == "ops-ana"


async def wa_bridge(url: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WA_BRIDGE_")}
    env.update(WA_BRIDGE_DATABASE_URL=url, WA_BRIDGE_CONNECTOR="sql")
    proc = await asyncio.create_subprocess_exec(
        WA_BRIDGE,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()
