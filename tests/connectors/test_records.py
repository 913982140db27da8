"""The machinery the record connectors share: the plan, what to send, choosing a match."""

from __future__ import annotations

from wa_bridge.connectors._call import Target
from wa_bridge.connectors._matching import Candidate, choose, modified_at
from wa_bridge.connectors._plan import is_status_only
from wa_bridge.connectors._records import MatchFacts, RecordConnector, RecordPlan, Write
from wa_bridge.connectors.base import book_keys, note_key
from wa_bridge.operations import CrmOperation
from wa_bridge.store import value_hash


def test_plan_merges_operations_per_record_later_values_winning() -> None:
    plan: RecordPlan[str, str] = RecordPlan(["contacts", "tickets"])
    plan.add(0, Write("contacts", "c1", {"a": "1", "b": "1"}, modes={"b": "if_empty"}))
    plan.add(1, Write("tickets", "t1", {"s": "open"}, {"subject": "x"}, contact_key="c1"))
    plan.add(2, Write("contacts", "c1", {"b": "2"}, {"name": "default"}))
    plan.add(3, Write("contacts", "c1", {}, facts=MatchFacts("+15550100001")))
    [contact] = plan.records("contacts")
    assert contact.values == {"a": "1", "b": "2"}
    assert contact.modes == {}  # the later op wrote b "always"
    assert contact.op_indexes == [0, 2, 3]
    assert contact.defaults == {"name": "default"}
    assert contact.facts == MatchFacts("+15550100001")
    [ticket] = plan.records("tickets")
    assert ticket.contact_key == "c1" and ticket.case_key is None
    assert plan.target(1) == ("tickets", "t1") and plan.target(9) is None


def _record(**values: str) -> RecordPlan[str, str]:
    plan: RecordPlan[str, str] = RecordPlan(["contacts"])
    modes = {"firstname": "if_empty", "opened": "on_create"}
    plan.add(0, Write("contacts", "c1", values, {"lastname": "WhatsApp"}, modes))  # type: ignore[arg-type]
    return plan


def test_a_new_record_gets_everything_defaults_under_values() -> None:
    [record] = _record(firstname="Pao", opened="t0", phone="+1").records("contacts")
    out = RecordConnector._outgoing(record, Target(None))
    assert out == {"lastname": "WhatsApp", "firstname": "Pao", "opened": "t0", "phone": "+1"}


def test_an_existing_record_gets_only_what_it_may_and_what_changed() -> None:
    [record] = _record(firstname="Pao", opened="t0", phone="+1", city="X").records("contacts")
    known = Target("101", written={"phone": value_hash("+1"), "city": value_hash("Y")})
    # on_create never; if_empty where not known filled; an unchanged value not again
    assert RecordConnector._outgoing(record, known) == {"firstname": "Pao", "city": "X"}
    filled = Target("101", filled=frozenset({"firstname"}), written={"phone": value_hash("+1")})
    assert RecordConnector._outgoing(record, filled) == {"city": "X"}
    nothing = Target(
        "101",
        filled=frozenset({"firstname"}),
        written={"phone": value_hash("+1"), "city": value_hash("X")},
    )
    assert RecordConnector._outgoing(record, nothing) is None  # no request at all
    adopted = Target(
        "101",
        "phone",
        frozenset({"firstname"}),
        {"phone": value_hash("+1"), "city": value_hash("X")},
        by_id=True,
    )
    assert RecordConnector._outgoing(record, adopted) == {}  # still written: our key


def test_values_checked_together_are_sent_together() -> None:
    plan: RecordPlan[str, str] = RecordPlan(["tickets"])
    stage = frozenset({"stage", "pipeline"})
    plan.add(0, Write("tickets", "k1", {"stage": "2", "pipeline": "0", "x": "1"}, together=stage))
    [record] = plan.records("tickets")
    sent = {n: value_hash(v) for n, v in record.values.items()}
    moved = Target("7", written={**sent, "stage": value_hash("1")})
    assert RecordConnector._outgoing(record, moved) == {"stage": "2", "pipeline": "0"}
    assert RecordConnector._outgoing(record, Target("7", written=sent)) is None


def test_book_keys_and_note_keys() -> None:
    note = CrmOperation(
        kind="add_note", fields={"message_id": "wamid.1"}, event_id="e1", contact_key="c1"
    )
    bare = CrmOperation(kind="add_note", fields={}, event_id="e1")
    assert note_key(note) == "wamid.1" and note_key(bare) == bare.idempotency_key
    case = CrmOperation(
        kind="upsert_case", fields={}, event_id="e2", contact_key="c1", case_key="k1"
    )
    outcome = CrmOperation(kind="record_outcome", fields={}, event_id="e3", index=1)
    assert book_keys([note, case, outcome]) == ["c1", "e2:0", "e3:1", "k1", "wamid.1"]
    assert is_status_only({"status": "read", "occurred_at": None})
    assert not is_status_only({"status": "read", "body": "hi"})


def _candidate(crm_id: str, **kwargs: object) -> Candidate:
    return Candidate(crm_id=crm_id, key=kwargs.pop("key", None), **kwargs)  # type: ignore[arg-type]


AR = MatchFacts("+5491123456789", "ana@example.com")
ORDER = ("key", "phone", "email")


def test_our_key_wins_whatever_the_order() -> None:
    mine = _candidate("1", key="c1", modified=1.0)
    by_phone = _candidate("2", phones=("+54 9 11 2345-6789",), modified=9.0)
    choice = choose("c1", AR, [by_phone, mine], ("phone", "email", "key"))
    assert choice is not None and choice.candidate.crm_id == "1" and choice.rule == "key"


def test_phone_in_any_stored_form_then_the_most_recently_modified() -> None:
    older = _candidate("1", phones=("+54 11 2345-6789",), modified=1.0)  # AR without the 9
    newer = _candidate("2", phones=("", "911 2345 6789"), modified=2.0)  # national, with 9
    stranger = _candidate("3", phones=("+1 911 234 5678",), modified=3.0)
    choice = choose("c1", AR, [older, newer, stranger], ORDER)
    assert choice is not None and (choice.candidate.crm_id, choice.rule) == ("2", "phone")
    assert choice.candidates == 2 and choice.others == ("1",)  # the one left unused


def test_a_record_of_another_contact_or_adopted_already_is_not_taken() -> None:
    theirs = _candidate("1", key="c_other", phones=("+5491123456789",), modified=5.0)
    free = _candidate("2", phones=("+5491123456789",), modified=1.0)
    choice = choose("c1", AR, [theirs, free], ORDER)
    assert choice is not None and choice.candidate.crm_id == "2"
    assert choose("c1", AR, [theirs, free], ORDER, taken={"2"}) is None


def test_a_record_holding_the_bare_number_beats_one_with_an_extension() -> None:
    extended = _candidate("1", phones=("+54 9 11 2345-6789 x4",))
    bare = _candidate("2", phones=("011 15-2345-6789",), modified=0.5)
    choice = choose("c1", AR, [extended, bare], ORDER)
    assert choice is not None and choice.candidate.crm_id == "2" and choice.candidates == 1
    alone = choose("c1", AR, [extended], ORDER)  # no bare one: the extension's record
    assert alone is not None and (alone.candidate.crm_id, alone.rule) == ("1", "phone")


def test_email_case_insensitively_and_the_order_decides() -> None:
    by_mail = _candidate("1", email="Ana@Example.com", modified=1.0)
    by_phone = _candidate("2", phones=("+5491123456789",), modified=1.0)
    first = choose("c1", AR, [by_mail, by_phone], ("key", "email", "phone"))
    assert first is not None and (first.candidate.crm_id, first.rule) == ("1", "email")
    assert choose("c1", MatchFacts(), [by_mail, by_phone], ORDER) is None
    only_key = choose("c1", AR, [by_mail, by_phone], ("key",))
    assert only_key is None


def test_modified_at_reads_both_vendors_times() -> None:
    assert modified_at("2026-05-04T10:30:00.123Z") == modified_at("2026-05-04T10:30:00.123+0000")
    assert modified_at("2026-05-04T10:30:01Z") > modified_at("2026-05-04T10:30:00Z")
    assert modified_at(None) == 0.0 and modified_at("yesterday") == 0.0
