"""Dead letters (add, append, list filters, get, status), audit and retention."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from wa_bridge.store import DeadLetterFilter, NewDeadLetter
from wa_bridge.store.retention import RetentionWindows, purge_expired
from wa_bridge.store.tables import audit_log

from ._helpers import T0, StoreFactory


def letter(
    event_id: str, *, at_h: int = 0, cls: str = "CrmRejected", **kw: object
) -> NewDeadLetter:
    fields: dict[str, object] = {
        "event_id": event_id,
        "event_type": "whatsapp.message.received",
        "contact_key": "c_1",
        "payload": b'{"id": "%s"}' % event_id.encode(),
        "error_class": cls,
        "error_message": f"failed {event_id}",
        "crm_error": "name too long",
        "attempts": 1,
        "failed_at": T0 + timedelta(hours=at_h),
        "topic": "wa.events",
        "partition": 3,
        "offset": 42,
    }
    fields.update(kw)
    return NewDeadLetter(**fields)  # type: ignore[arg-type]


async def test_add_get_and_refailure_appends(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    async with store.transaction() as tx:
        [dl_id] = await tx.add_dead_letters([letter("e1")])
    await store.set_dead_letter_status(dl_id, "replayed", note="by ops")
    async with store.transaction() as tx:
        assert await tx.add_dead_letters([letter("e1", at_h=2, cls="UnexpectedError")]) == [dl_id]
    got = await store.get_dead_letter(dl_id)
    assert got is not None
    assert got.status == "open" and got.attempts == 2
    assert got.error_class == "UnexpectedError"
    assert got.first_failed_at == T0 and got.last_failed_at == T0 + timedelta(hours=2)
    assert got.payload == b'{"id": "e1"}'
    assert len(got.errors) == 2 and "CrmRejected" in got.errors[0]
    assert await store.get_dead_letter(dl_id + 1000) is None


async def test_list_filters(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url)
    async with store.transaction() as tx:
        ids = await tx.add_dead_letters(
            [
                letter("e1", at_h=1),
                letter("e2", at_h=2, cls="MappingOutputInvalid"),
                letter("e3", at_h=3, event_type="whatsapp.message.status", contact_key="c_2"),
            ]
        )
    await store.set_dead_letter_status(ids[0], "discarded")

    async def event_ids(**kw: object) -> list[str]:
        return [d.event_id for d in await store.list_dead_letters(DeadLetterFilter(**kw))]  # type: ignore[arg-type]

    assert await event_ids() == ["e3", "e2"]  # open, newest first
    assert await event_ids(status=None) == ["e3", "e2", "e1"]
    assert await event_ids(status="discarded") == ["e1"]
    assert await event_ids(error_class="MappingOutputInvalid") == ["e2"]
    assert await event_ids(event_type="whatsapp.message.status") == ["e3"]
    assert await event_ids(contact_key="c_2") == ["e3"]
    assert await event_ids(since=T0 + timedelta(hours=2), status=None) == ["e3", "e2"]
    assert await event_ids(until=T0 + timedelta(hours=2), status=None) == ["e1"]
    assert await event_ids(limit=1) == ["e3"]


async def test_audit_is_recorded(store_url: str, store_factory: StoreFactory) -> None:
    store = await store_factory(store_url, clock=lambda: T0)
    await store.record_audit(
        actor="ana@ops", role="operator", action="dlq.replay", target="dead_letter:1", detail="ok"
    )
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(audit_log))).mappings().all()
    assert [(r["actor"], r["action"], r["target"], r["at"]) for r in rows] == [
        ("ana@ops", "dlq.replay", "dead_letter:1", T0)
    ]


async def test_retention_purges_old_ledger_and_closed_dead_letters(
    store_url: str, store_factory: StoreFactory
) -> None:
    now = [T0 - timedelta(days=30)]
    store = await store_factory(store_url, clock=lambda: now[0])
    async with store.transaction() as tx:
        await tx.claim_events(["old"])
        old_ids = await tx.add_dead_letters(
            [letter("d-open", at_h=-720), letter("d-closed", at_h=-720)]
        )
    await store.set_dead_letter_status(old_ids[1], "replayed")
    now[0] = T0
    async with store.transaction() as tx:
        await tx.claim_events(["new"])
        [recent] = await tx.add_dead_letters([letter("d-recent")])
    await store.set_dead_letter_status(recent, "discarded")
    windows = RetentionWindows(ledger=14, dead_letters=14)
    purged = await purge_expired(store, now=T0, windows=windows)
    assert (purged.ledger, purged.dead_letters) == (1, 1)
    left = await store.list_dead_letters(DeadLetterFilter(status=None))
    assert sorted(d.event_id for d in left) == ["d-open", "d-recent"]  # open ones are kept
    async with store.transaction() as tx:
        assert await tx.claim_events(["old", "new"]) == {"old"}
