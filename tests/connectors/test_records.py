"""The machinery the record connectors share: the plan, create-only defaults, the id cache."""

from __future__ import annotations

from wa_bridge.connectors._records import IdCache, RecordPlan, Write, is_status_only, note_key
from wa_bridge.connectors.base import CrmResult
from wa_bridge.operations import CrmOperation


def test_plan_merges_operations_per_record_later_values_winning() -> None:
    plan: RecordPlan[str, str] = RecordPlan(["contacts", "tickets"])
    plan.add(0, Write("contacts", "c1", {"a": "1", "b": "1"}))
    plan.add(1, Write("tickets", "t1", {"s": "open"}, {"subject": "x"}, contact_key="c1"))
    plan.add(2, Write("contacts", "c1", {"b": "2"}, {"name": "default"}))
    [contact] = plan.records("contacts")
    assert contact.values == {"a": "1", "b": "2"}
    assert contact.op_indexes == [0, 2]
    assert contact.create_defaults == {"name": "default"}
    [ticket] = plan.records("tickets")
    assert ticket.contact_key == "c1" and ticket.case_key is None
    written = {("contacts", "c1"): CrmResult("9"), ("tickets", "t1"): CrmResult("7", True)}
    assert plan.results(written) == [CrmResult("9"), CrmResult("7", True), CrmResult("9")]


def test_create_only_defaults_only_for_new_records() -> None:
    plan: RecordPlan[str, str] = RecordPlan(["tickets"])
    plan.add(0, Write("tickets", "t1", {"wa_status": "open"}, {"subject": "WhatsApp"}))
    plan.add(1, Write("tickets", "t2", {"subject": "Refund"}, {"subject": "WhatsApp"}))
    new, named = plan.records("tickets")
    assert new.wants_defaults and not named.wants_defaults
    assert new.to_send(exists=False) == {"subject": "WhatsApp", "wa_status": "open"}
    assert new.to_send(exists=True) == {"wa_status": "open"}
    assert named.to_send(exists=False) == {"subject": "Refund"}


def test_id_cache_is_bounded_and_lists_unknown_keys_once() -> None:
    cache: IdCache[str] = IdCache(max_size=2)
    cache.remember("contacts", "a", "1")
    cache.remember("tickets", "a", "2")
    assert cache.get("contacts", "a") == "1" and cache.knows("tickets", "a")
    assert cache.unknown("contacts", ["b", None, "a", "b"]) == ["b"]
    cache.remember("contacts", "b", "3")  # full: emptied first (the CRM stays the truth)
    assert not cache.knows("contacts", "a") and cache.get("contacts", "b") == "3"


def test_note_key_and_status_only() -> None:
    note = CrmOperation(kind="add_note", fields={"message_id": "wamid.1"}, event_id="e1")
    assert note_key(note) == "wamid.1"
    bare = CrmOperation(kind="add_note", fields={}, event_id="e1")
    assert note_key(bare) == bare.idempotency_key
    assert is_status_only({"status": "read", "occurred_at": None})
    assert not is_status_only({"status": "read", "body": "hi"})
