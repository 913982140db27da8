"""The shipped mappings load, their own test files pass, and the schema knows every event.

The connector mappings extend mappings/base.yaml: each stays a few lines, and differs
from the base exactly where its ``overrides`` say (no copied rules drifting apart).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from wa_bridge.errors import MappingOutputInvalid
from wa_bridge.events import EVENT_TYPES, CanonicalEvent
from wa_bridge.mapping import MappingErrors, load_mapping
from wa_bridge.mapping.spec import MappingSpec, load_spec
from wa_bridge.mapping.testing import find_test_files, run_test_file

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "mappings").glob("*.yaml"))
BASE = ROOT / "mappings/base.yaml"
CONNECTOR_FILES = [p for p in SHIPPED if p != BASE]
THIN_KEYS = {"version", "extends", "connector", "overrides"}


def _yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def test_four_connectors_shipped() -> None:
    assert {load_mapping(p).connector for p in CONNECTOR_FILES} == {
        "sql",
        "rest",
        "hubspot",
        "salesforce",
    }


def test_every_connector_mapping_extends_the_one_base() -> None:
    loaded = {p.name: load_mapping(p, allow_base=True) for p in SHIPPED}
    assert {name: m.connector for name, m in loaded.items()} == {
        "base.yaml": "",
        "hubspot.yaml": "hubspot",
        "rest.yaml": "rest",
        "salesforce.yaml": "salesforce",
        "sql.yaml": "sql",
    }
    assert {name: m.extends for name, m in loaded.items()} == {
        "base.yaml": (),
        "hubspot.yaml": (str(BASE),),
        "rest.yaml": (str(BASE),),
        "salesforce.yaml": (str(BASE),),
        "sql.yaml": (str(BASE),),
    }
    with pytest.raises(MappingErrors, match="'connector' is required"):
        load_mapping(BASE)  # the worker never runs the base itself


@pytest.mark.parametrize("path", CONNECTOR_FILES, ids=lambda p: p.name)
def test_connector_mappings_are_thin(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) < 40
    data = _yaml(path)
    assert set(data) <= THIN_KEYS, "a connector mapping changes the base through overrides"
    assert data["extends"] == "base.yaml"


def _rules_of(spec: MappingSpec) -> dict[str, list[tuple[str, Any, dict[str, Any]]]]:
    """Per event type, each rule as (id or op, when, {field: its resolved keys})."""
    return {
        event_type: [
            (rule.id or rule.kind, rule.when, {f.name: f.data for f in rule.fields})
            for rule in rules
        ]
        for event_type, rules in spec.rules.items()
    }


def _differences(base: MappingSpec, mine: MappingSpec) -> set[tuple[str, ...]]:
    """Where two resolved mappings differ: (event, rule, "when") or (event, rule, field)
    or (event, rule, field, key)."""
    ours, theirs = _rules_of(mine), _rules_of(base)
    assert list(ours) == list(theirs)
    out: set[tuple[str, ...]] = set()
    for event_type, rules in ours.items():
        assert [r[0] for r in rules] == [r[0] for r in theirs[event_type]]
        for (name, when, fields), (_, base_when, base_fields) in zip(
            rules, theirs[event_type], strict=True
        ):
            if when != base_when:
                out.add((event_type, name, "when"))
            for field in fields.keys() | base_fields.keys():
                mine_f, base_f = fields.get(field), base_fields.get(field)
                if mine_f is None or base_f is None:
                    out.add((event_type, name, field))
                    continue
                out.update(
                    (event_type, name, field, key)
                    for key in mine_f.keys() | base_f.keys()
                    if mine_f.get(key) != base_f.get(key)
                )
    return out


def _declared(overrides: dict[str, Any]) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for event_type, rules in overrides.items():
        for name, change in rules.items():
            if "when" in change:
                out.add((event_type, name, "when"))
            for field, keys in (change.get("fields") or {}).items():
                if keys is None:
                    out.add((event_type, name, field))
                else:
                    out.update((event_type, name, field, key) for key in keys)
    return out


@pytest.mark.parametrize("path", CONNECTOR_FILES, ids=lambda p: p.name)
def test_connector_mappings_differ_from_the_base_only_where_they_declare(path: Path) -> None:
    base, mine = load_spec(BASE, allow_base=True), load_spec(path)
    assert mine.catalogs.keys() == base.catalogs.keys()
    assert all(mine.catalogs[n].values == c.values for n, c in base.catalogs.items())
    assert _differences(base, mine) == _declared(_yaml(path).get("overrides") or {})


# The note-body limit each connector mapping ends up with, and the file that sets it.
BODY_LIMITS = {
    "sql.yaml": ("base.yaml", 4096),
    "rest.yaml": ("rest.yaml", 2000),
    "hubspot.yaml": ("hubspot.yaml", 65536),
    "salesforce.yaml": ("base.yaml", 4096),  # Task.Description takes 32,000
}


@pytest.mark.parametrize("name", BODY_LIMITS)
@pytest.mark.parametrize("event_type", ["whatsapp.message.received", "whatsapp.message.echo"])
def test_note_body_limit_per_connector(name: str, event_type: str) -> None:
    where, limit = BODY_LIMITS[name]
    mapping = load_mapping(ROOT / "mappings" / name)

    def note(length: int) -> CanonicalEvent:
        data = {"message_id": "wamid.1", "text": {"body": "x" * length}}
        raw = {"id": "e", "type": event_type, "source": "s", "time": "2026-06-10T14:00:00Z"}
        return CanonicalEvent.from_dict({**raw, "data": data})

    (op,) = [op for op in mapping.apply(note(limit)) if op.kind == "add_note"]
    assert op.fields["body"] == "x" * limit
    with pytest.raises(MappingOutputInvalid) as info:
        mapping.apply(note(limit + 1))
    assert (info.value.location or "").startswith(f"{ROOT}/mappings/{where}:")
    assert f"add_note.body: longer than max_length {limit} " in str(info.value)


def test_the_shared_test_file_runs_against_every_shipped_mapping() -> None:
    listed = _yaml(ROOT / "mappings/tests/base.yaml")["mappings"]
    assert sorted(Path(p).name for p in listed) == [p.name for p in SHIPPED]


@pytest.mark.parametrize("path", find_test_files(ROOT / "mappings"), ids=lambda p: p.name)
def test_shipped_mapping_tests_pass(path: Path) -> None:
    results = run_test_file(path)
    assert results
    failed = [f"{r.where} {r.name}\n{r.detail}" for r in results if not r.passed]
    assert not failed, "\n".join(failed)


def test_schema_lists_every_event_type() -> None:
    schema = json.loads((ROOT / "schemas/mapping.schema.json").read_text())
    assert list(schema["properties"]["events"]["properties"]) == list(EVENT_TYPES)
    assert list(schema["properties"]["overrides"]["properties"]) == list(EVENT_TYPES)


@pytest.mark.parametrize("path", CONNECTOR_FILES, ids=lambda p: p.name)
def test_shipped_mappings_on_shared_webhooks(path: Path, shared_fixtures: Path) -> None:
    from datetime import UTC, datetime

    from wa_bridge.normalize import normalize_webhook

    mapping = load_mapping(path)
    mapped = 0
    for path in sorted((shared_fixtures / "meta/docs").glob("*.json")):
        for event in normalize_webhook(
            json.loads(path.read_bytes()), received_at=datetime.now(UTC)
        ):
            try:
                mapped += len(mapping.apply(event))
            except MappingOutputInvalid as exc:  # pragma: no cover - shows which sample
                pytest.fail(f"{path.name}: {exc}")
    assert mapped > 50


# The contact name limit each connector mapping ends up with, and the file that sets it.
NAME_LIMITS = {
    "sql.yaml": ("fragments/contact.yaml", 256),
    "rest.yaml": ("fragments/contact.yaml", 256),
    "hubspot.yaml": ("fragments/contact.yaml", 256),
    "salesforce.yaml": ("salesforce.yaml", 80),  # Contact.LastName
}
CONTACT_EVENTS = ["whatsapp.message.received", "whatsapp.message.echo", "whatsapp.user.preferences"]


def test_every_connector_mapping_has_a_name_limit() -> None:
    assert sorted(NAME_LIMITS) == sorted(p.name for p in CONNECTOR_FILES)


@pytest.mark.parametrize("name", NAME_LIMITS)
@pytest.mark.parametrize("event_type", CONTACT_EVENTS)
def test_contact_name_limit_per_connector(name: str, event_type: str) -> None:
    where, limit = NAME_LIMITS[name]
    mapping = load_mapping(ROOT / "mappings" / name)

    def contact(length: int) -> CanonicalEvent:
        person = {"key": "+525512345678", "phone_e164": "+525512345678", "profile_name": "n"}
        data = {"message_id": "wamid.1", "contact": {**person, "profile_name": "n" * length}}
        raw = {"id": "e", "type": event_type, "source": "s", "time": "2026-06-10T14:00:00Z"}
        return CanonicalEvent.from_dict({**raw, "data": data})

    (op,) = [op for op in mapping.apply(contact(limit)) if op.kind == "upsert_contact"]
    assert op.fields["name"] == "n" * limit
    with pytest.raises(MappingOutputInvalid) as info:
        mapping.apply(contact(limit + 1))
    assert (info.value.location or "").startswith(f"{ROOT}/mappings/{where}:")
    assert f"upsert_contact.name: longer than max_length {limit} " in str(info.value)


# Field ownership in the shipped mappings: the fields NOT written `always`, per operation.
# Names (and the phone's country) are the CRM's once set, and so is the contact's first
# touch; when and how a case was opened is decided by the message that opened it, and the
# touch that opened it is written once; a deal keeps the name and source it was made
# with; our keys, wa_* fields and statuses: always.
_FIRST_TOUCH = ("at", "origin", "source_type", "source_id", "ctwa_clid", "source_url")
_FIRST_TOUCH += ("headline", "utm_source", "utm_medium", "utm_campaign")
_CASE_TOUCH = ("ctwa_clid", "source_url", "ad_id", "utm_source", "utm_medium", "utm_campaign")
OWNERSHIP: dict[str, dict[str, str]] = {
    "upsert_contact": {
        "name": "if_empty",
        "country": "if_empty",
        **{f"first_touch_{name}": "if_empty" for name in _FIRST_TOUCH},
    },
    "upsert_case": {
        "opened_at": "on_create",
        "channel": "on_create",
        **{name: "if_empty" for name in _CASE_TOUCH},
    },
    # a deal's name and where it came from (an order, a conversion) are the first one's
    "upsert_deal": {"name": "on_create", "source": "on_create"},
}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_field_ownership(path: Path) -> None:
    spec = load_spec(path, allow_base=True)
    for event_type, rules in spec.rules.items():
        for rule in rules:
            modes = {f.name: f.data["write"] for f in rule.fields if "write" in f.data}
            wanted = {
                name: mode
                for name, mode in OWNERSHIP.get(rule.kind, {}).items()
                if name in {f.name for f in rule.fields}
            }
            assert modes == wanted, (event_type, rule.kind)
    mapping = load_mapping(path, allow_base=True)
    assert mapping.match_order == ("key", "phone", "email")


def test_a_named_contact_carries_its_write_modes() -> None:
    mapping = load_mapping(ROOT / "mappings/sql.yaml")
    data = {
        "message_id": "wamid.1",
        "contact": {"key": "+525512345678", "phone_e164": "+525512345678", "profile_name": "Pao"},
    }
    raw = {"id": "e", "type": "whatsapp.message.received", "source": "s"}
    ops = mapping.apply(
        CanonicalEvent.from_dict({**raw, "time": "2026-06-10T14:00:00Z", "data": data})
    )
    assert [(op.kind, dict(op.write_modes)) for op in ops] == [
        ("upsert_contact", {"name": "if_empty"}),  # no country in the event: not listed
        ("add_note", {}),  # the case comes with the worker's conversation.case.updated
    ]
    case = {"case_key": "k_" + "0" * 32, "status": "open", "opened_at": "2026-06-10T14:00:00Z"}
    raw = {"id": "e#case", "type": "conversation.case.updated", "source": "s"}
    ops = mapping.apply(
        CanonicalEvent.from_dict({**raw, "time": "2026-06-10T14:00:00Z", "data": case})
    )
    assert [(op.kind, dict(op.write_modes)) for op in ops] == [
        ("upsert_case", {"opened_at": "on_create", "channel": "on_create"}),
    ]
