"""Records the CRM refuses one by one: only their events are dead-lettered (#9, the seam).

The connector answers ``OpRejected`` for a refused record; the worker rolls the batch
back, applies it again without those events (the record book carried over, so nothing
the CRM took is written twice), commits the rest, and dead-letters the refused events
with the CRM's own message: nothing of them is committed, so a replay applies them whole.
The book is saved with the batch (``crm_records``); adoptions are in ``identity_events``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from connectors.conftest import checked, hubspot_session  # noqa: F401 - fixtures
from connectors.servers import HubSpotServer
from wa_bridge.events import CanonicalEvent
from wa_bridge.operations import CrmOperation
from wa_bridge.store import create_engine, open_store
from wa_bridge.store.api import DeadLetterFilter
from wa_bridge.worker.assembly import DeadLetterReplayer
from wa_bridge.worker.runner import open_worker

from .conftest import FAST_GROUP, FlakyCrm, make_event, publish
from .mapper import NoteMapper

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def refuse_note(key: str) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    def rejection(item: dict[str, Any]) -> dict[str, Any] | None:
        if item["op"] == "add_note" and item["key"] == key:
            return {"code": "validation_error", "message": "body too long", "field": "body"}
        return None

    return rejection


async def test_only_the_refused_event_is_dead_lettered_with_the_crm_message(
    settings_factory: Callable[..., Any], worker_factory: Callable[..., Any], crm: FlakyCrm
) -> None:
    settings = settings_factory(kafka_partitions=1)
    crm.item_rejection = refuse_note("wamid.2")  # type: ignore[method-assign]
    events = [make_event(i, f"+5215500001{i:03d}") for i in range(4)]
    try:
        async with worker_factory(settings) as worker:
            await publish(settings, events)
            stats = await worker.run_until_idle()
            assert (stats.delivered, stats.dead_lettered) == (3, 1)
            await publish(settings, [events[2]])  # Meta delivers it again: the ledger knows
            again = await worker.run_until_idle()
            assert again.dead_lettered == 1 and again.duplicates == 1
    finally:
        del crm.item_rejection
    assert sorted(crm.notes()) == ["wamid.0", "wamid.1", "wamid.3"]
    store = await open_store(settings.database_url)
    try:
        (letter,) = await store.list_dead_letters(DeadLetterFilter())
        assert letter.event_id == "ev-2" and letter.error_class == "CrmRejected"
        assert letter.crm_error == "validation_error: body too long (field body)"
        async with DeadLetterReplayer(settings, store, mapper=NoteMapper()) as replayer:
            [result] = await replayer.replay([letter.id], actor="ops")
    finally:
        await store.aclose()
    assert result.status == "replayed"  # nothing of it was committed: it applies whole
    assert sorted(crm.notes()) == ["wamid.0", "wamid.1", "wamid.2", "wamid.3"]


class EmailMapper:
    """A contact with an e-mail (HubSpot refuses a bad one) and a note per message."""

    def apply(self, event: CanonicalEvent) -> list[CrmOperation]:
        if event.type != "whatsapp.message.received":
            return []  # e.g. the worker's conversation.case.updated
        fields: dict[str, Any] = {"phone_e164": event.subject}
        if event.data.get("email"):
            fields["email"] = event.data["email"]
        return [
            CrmOperation(kind="upsert_contact", fields=fields, event_id=event.id),
            CrmOperation(
                kind="add_note",
                fields={"message_id": str(event.data["message_id"]), "body": "hola"},
                event_id=event.id,
                index=1,
            ),
        ]


@pytest.fixture
def hubspot(hubspot_session: HubSpotServer) -> Iterator[HubSpotServer]:  # noqa: F811
    yield from checked(hubspot_session)


async def test_hubspot_refusal_the_book_and_the_adoptions_are_saved_with_the_batch(
    settings_factory: Callable[..., Any], hubspot: HubSpotServer
) -> None:
    settings = settings_factory(
        kafka_partitions=1, connector="hubspot", crm_base_url=hubspot.url, crm_token=hubspot.token
    )
    company = hubspot.seed("contacts", firstname="Ana", phone="+52 1 55 0000 1000")
    events = [make_event(i, f"+5255000010{i:02d}") for i in range(3)]
    events[1] = make_event(1, "+525500001001", email="not-an-email")
    async with open_worker(settings, mapper=EmailMapper(), consumer_options=FAST_GROUP) as worker:
        await publish(settings, events)
        stats = await worker.run_until_idle()
    assert (stats.delivered, stats.dead_lettered) == (2, 1)
    counts = hubspot.counts()
    # the batch was applied again without the refused event: nothing written twice
    assert counts["POST objects/communications/batch/create"] == 1  # linked inline
    assert counts["POST objects/communications/batch/upsert"] == 0
    assert counts["POST objects/contacts/search"] == 1
    assert counts["POST objects/tickets/batch/read"] == 0  # a case never written: not read
    keys = [c["properties"].get("wa_contact_key") for c in hubspot.objects("contacts")]
    assert len(keys) == 2 and all(keys)  # the company's Ana adopted, one new; no duplicate
    adopted = hubspot.get("contacts", company)
    assert adopted is not None and adopted["properties"].get("wa_contact_key")
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT kind, match, crm_id FROM crm_records"))).all()
            audit = (
                await conn.execute(
                    text(
                        "SELECT decision, kinds, detail FROM identity_events "
                        "WHERE decision = 'crm_matched'"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert sorted((kind, match) for kind, match, _ in rows) == [
        ("contacts", "created"),
        ("contacts", "phone"),
        ("notes", "created"),
        ("notes", "created"),
    ]
    [(_, kinds, detail)] = audit
    assert kinds == "phone" and company in detail
    assert "5500001000" not in detail  # ids and counts only, never a number
