"""Identity scenarios through the real pipeline: signed webhook → receiver → Tansu → worker
→ SQL CRM (issue 9). Each scenario posts its webhooks (``tests/samples/meta/identity_*``)
step by step, letting the worker catch up after each step as time would, then checks the
exact number of CRM contacts and which messages landed on which contact.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from receiver._harness import Receiver, running_receiver
from wa_bridge.bus.embedded import EmbeddedBroker
from wa_bridge.store import create_engine
from wa_bridge.worker.loop import Worker
from wa_bridge.worker.runner import open_worker
from worker.sqlcrm import SAMPLES, publish, sample_events, sql_settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

PARTITIONS = 3  # what the receiver harness creates the topic with


@dataclass(frozen=True)
class Scenario:
    """``steps``: webhooks posted together, the worker caught up after each step.
    ``people``: for each person, the webhooks whose messages must land on their contact
    (one contact per person, none shared). ``contacts``: crm_contacts rows at the end."""

    steps: tuple[tuple[str, ...], ...]
    people: tuple[tuple[str, ...], ...]
    contacts: int


def steps(*names: str) -> tuple[tuple[str, ...], ...]:
    return tuple((n,) for n in names)


SCENARIOS = {
    # user_changed_number with wa_id + user_id + previous_user_id (Meta, 2026-08)
    "number change, 2026 shape": Scenario(
        steps(
            "identity_ar_change_1_before",
            "identity_ar_change_2_notice",
            "identity_ar_change_3_after",
        ),
        (
            (
                "identity_ar_change_1_before",
                "identity_ar_change_2_notice",
                "identity_ar_change_3_after",
            ),
        ),
        contacts=1,
    ),
    # only system.wa_id, no contacts; the new BSUID is first seen on the next message
    "number change, classic shape": Scenario(
        steps(
            "identity_mx_change_1_before",
            "identity_mx_change_2_notice",
            "identity_mx_change_3_after",
        ),
        (
            (
                "identity_mx_change_1_before",
                "identity_mx_change_2_notice",
                "identity_mx_change_3_after",
            ),
        ),
        contacts=1,
    ),
    # customer_changed_number with new_wa_id, no BSUIDs anywhere
    "number change, legacy shape": Scenario(
        steps(
            "identity_co_change_1_before",
            "identity_co_change_2_notice",
            "identity_co_change_3_after",
        ),
        (
            (
                "identity_co_change_1_before",
                "identity_co_change_2_notice",
                "identity_co_change_3_after",
            ),
        ),
        contacts=1,
    ),
    # user_changed_user_id with no from, no wa_id and no contacts: previous_user_id finds them
    "BSUID rotation without a phone": Scenario(
        steps(
            "identity_cl_rotation_1_before",
            "identity_cl_rotation_2_notice",
            "identity_cl_rotation_3_after",
        ),
        (
            (
                "identity_cl_rotation_1_before",
                "identity_cl_rotation_2_notice",
                "identity_cl_rotation_3_after",
            ),
        ),
        contacts=1,
    ),
    "user_id_update": Scenario(
        steps(
            "identity_cl_id_update_1_before",
            "identity_cl_id_update_2_update",
            "identity_cl_id_update_3_after",
        ),
        (("identity_cl_id_update_1_before", "identity_cl_id_update_3_after"),),
        contacts=1,
    ),
    "BSUID-only user later seen with a phone": Scenario(
        steps("identity_cl_bsuid_then_phone_1", "identity_cl_bsuid_then_phone_2"),
        (("identity_cl_bsuid_then_phone_1", "identity_cl_bsuid_then_phone_2"),),
        contacts=1,
    ),
    # the shared phone is the sender's own: a later phone-only status finds them
    "contact_request card": Scenario(
        steps("identity_mx_request_1_card", "identity_mx_request_2_status"),
        (("identity_mx_request_1_card", "identity_mx_request_2_status"),),
        contacts=1,
    ),
    # the card's person is not linked to the sender, and is no contact until they write
    "third-party card": Scenario(
        steps("identity_mx_third_party_1_card", "identity_mx_third_party_2_friend"),
        (("identity_mx_third_party_1_card",), ("identity_mx_third_party_2_friend",)),
        contacts=2,
    ),
    "MX 521 message, 52 status": Scenario(
        steps("identity_mx_variants_1_text", "identity_mx_variants_2_status"),
        (("identity_mx_variants_1_text", "identity_mx_variants_2_status"),),
        contacts=1,
    ),
    "AR 549 message, 9-less status and echo": Scenario(
        steps(
            "identity_ar_variants_1_text",
            "identity_ar_variants_2_status",
            "identity_ar_variants_3_echo",
        ),
        (
            (
                "identity_ar_variants_1_text",
                "identity_ar_variants_2_status",
                "identity_ar_variants_3_echo",
            ),
        ),
        contacts=1,
    ),
    "BR 12- and 13-digit ids stay apart": Scenario(
        steps("identity_br_apart_1_text", "identity_br_apart_2_echo"),
        (("identity_br_apart_1_text",), ("identity_br_apart_2_echo",)),
        contacts=2,
    ),
    "BR ids paired by one payload": Scenario(
        steps(
            "identity_br_paired_1_text",
            "identity_br_paired_2_status",
            "identity_br_paired_3_failed",
        ),
        (
            (
                "identity_br_paired_1_text",
                "identity_br_paired_2_status",
                "identity_br_paired_3_failed",
            ),
        ),
        contacts=1,
    ),
    "two people with the same profile name": Scenario(
        steps("identity_mx_same_name"), (), contacts=2
    ),
    # Meta delivers every webhook twice; the notice a third time at the end
    "redelivered webhooks": Scenario(
        (
            ("identity_ar_change_1_before", "identity_ar_change_1_before"),
            ("identity_ar_change_2_notice", "identity_ar_change_2_notice"),
            ("identity_ar_change_3_after", "identity_ar_change_3_after"),
            ("identity_ar_change_2_notice",),
        ),
        (
            (
                "identity_ar_change_1_before",
                "identity_ar_change_2_notice",
                "identity_ar_change_3_after",
            ),
        ),
        contacts=1,
    ),
    # the new identity writes before the notice arrives: that message keeps its own contact
    # (nothing tied it to the person then); the notice and everything after reach the person
    "notice after the new identity wrote": Scenario(
        steps(
            "identity_ar_late_1_before",
            "identity_ar_late_2_new_first",
            "identity_ar_late_3_notice",
            "identity_ar_late_4_after",
        ),
        (
            ("identity_ar_late_1_before", "identity_ar_late_3_notice", "identity_ar_late_4_after"),
            ("identity_ar_late_2_new_first",),
        ),
        contacts=2,
    ),
}


@dataclass
class Pipeline:
    receiver: Receiver
    worker: Worker
    database_url: str

    async def post(self, *names: str) -> None:
        for name in names:
            response = await self.receiver.post((SAMPLES / f"{name}.json").read_bytes())
            assert response.status_code == 200, response.text
        await self.worker.run_until_idle()


@asynccontextmanager
async def pipeline(
    broker: EmbeddedBroker, topic: str, database_url: str
) -> AsyncIterator[Pipeline]:
    settings = sql_settings(
        broker.bootstrap,
        topic,
        database_url,
        kafka_partitions=PARTITIONS,
        consumer_fetch_max_wait_ms=50,  # Tansu holds a fetch the full wait; steps are many
    )
    async with (
        running_receiver(broker.bootstrap, topic) as receiver,
        open_worker(settings) as worker,
    ):
        yield Pipeline(receiver, worker, database_url)


async def crm_rows(database_url: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(crm_contacts rows, note key → contact key)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            contacts = (await conn.execute(text("SELECT * FROM crm_contacts"))).mappings().all()
            notes = (await conn.execute(text("SELECT note_key, contact_key FROM crm_notes"))).all()
    finally:
        await engine.dispose()
    return [dict(c) for c in contacts], {str(k): str(c) for k, c in notes}


def message_ids(name: str) -> list[str]:
    return [
        str(e.data["message_id"]) for e in sample_events(f"{name}.json") if "message_id" in e.data
    ]


@pytest.mark.parametrize("scenario", list(SCENARIOS.values()), ids=list(SCENARIOS))
async def test_identity_scenario(
    scenario: Scenario,
    broker: EmbeddedBroker,
    topic_factory: Callable[[str], str],
    sql_crm_url: str,
) -> None:
    async with pipeline(broker, topic_factory("identity"), sql_crm_url) as run:
        for step in scenario.steps:
            await run.post(*step)
        assert run.worker.stats.dead_lettered == 0
    contacts, landed = await crm_rows(sql_crm_url)
    assert len(contacts) == scenario.contacts
    posted = {m for step in scenario.steps for name in step for m in message_ids(name)}
    assert set(landed) == posted  # every message has its note, once (note key = wamid)
    owners = []
    for person in scenario.people:
        keys = {landed[m] for name in person for m in message_ids(name)}
        assert len(keys) == 1, (person, keys)
        owners += keys
    assert len(set(owners)) == len(owners)  # no two people share a contact


async def test_number_change_leaves_the_crm_contact_on_the_new_identity(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], sql_crm_url: str
) -> None:
    async with pipeline(broker, topic_factory("identity"), sql_crm_url) as run:
        await run.post("identity_ar_change_1_before")
        await run.post("identity_ar_change_2_notice")
    [contact], _ = await crm_rows(sql_crm_url)
    assert contact["phone_e164"] == "+5491160001002"
    assert contact["wa_id"] == "5491160001002"  # the reply address is the new number
    assert contact["bsuid"] == "AR.9100000000000000002"
    assert contact["name"] == "Lucía Paz"


async def test_same_profile_name_is_two_contacts(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], sql_crm_url: str
) -> None:
    async with pipeline(broker, topic_factory("identity"), sql_crm_url) as run:
        await run.post("identity_mx_same_name")
    contacts, landed = await crm_rows(sql_crm_url)
    assert sorted(c["name"] for c in contacts) == ["Ana López", "Ana López"]
    first, second = message_ids("identity_mx_same_name")
    assert landed[first] != landed[second]
    assert {c["contact_key"] for c in contacts} == {landed[first], landed[second]}


async def test_a_notice_normalized_by_the_previous_release_still_applies(
    broker: EmbeddedBroker, topic_factory: Callable[[str], str], sql_crm_url: str
) -> None:
    """An event still in a retry topic or a dead letter from before ``identity_change``
    existed: ``contact`` was the old identity, ``system.new_phone_e164`` the new phone."""
    before, after = (
        sample_events(f"identity_mx_change_{n}.json")[0] for n in ("1_before", "3_after")
    )
    (notice,) = sample_events("identity_mx_change_2_notice.json")
    data = copy.deepcopy(notice.data)
    del data["identity_change"]
    data["contact"] = data["contact"] | {"key": "+525560001001", "phone_e164": "+525560001001"}
    legacy = dataclasses.replace(notice, data=data, subject="+525560001001")
    settings = sql_settings(
        broker.bootstrap,
        topic_factory("identity"),
        sql_crm_url,
        kafka_partitions=PARTITIONS,
        consumer_fetch_max_wait_ms=50,
    )
    async with open_worker(settings) as worker:
        for event in (before, legacy, after):
            await publish(settings, [event])
            await worker.run_until_idle()
    contacts, landed = await crm_rows(sql_crm_url)
    assert len(contacts) == 1
    assert len(set(landed.values())) == 1 and len(landed) == 3
