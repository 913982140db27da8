"""Field ownership (``write:``), the ``match:`` setting and the connector check.

A field's write mode travels on each operation (only the fields not written ``always``),
overrides change it, and a wrong mode, match rule or connector is reported at its
``file:line:column``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from wa_bridge.errors import ConfigError
from wa_bridge.mapping import MappingErrors, check_connector, load_mapping
from wa_bridge.operations import DEFAULT_MATCH_ORDER, MATCH_RULES, WRITE_MODES, CrmOperation

from .helpers import HEAD, errors_of, event, mapping_of, write

CONTACT = """
events:
  whatsapp.message.received:
    - op: upsert_contact
      fields:
        phone_e164: {path: data.contact.phone_e164, type: phone}
        name: {path: data.contact.profile_name, write: if_empty}
        owner: {const: team-a, write: on_create}
        wa_id: {path: data.contact.wa_id, write: always}
"""
PERSON = {"contact": {"phone_e164": "+525512345678", "profile_name": "Pao", "wa_id": "521"}}


def base_and_child(tmp_path: Path, child_body: str) -> Path:
    write(tmp_path, "base.yaml", "version: 1\n" + textwrap.dedent(CONTACT).lstrip("\n"))
    head = "version: 1\nextends: base.yaml\nconnector: hubspot\n"
    return write(tmp_path, "child.yaml", head + textwrap.dedent(child_body).lstrip("\n"))


def test_closed_sets() -> None:
    assert WRITE_MODES == ("always", "on_create", "if_empty")
    assert MATCH_RULES == ("key", "phone", "email")
    assert DEFAULT_MATCH_ORDER == ("key", "phone", "email")


def test_an_operation_built_without_modes_writes_everything_always() -> None:
    op = CrmOperation(kind="add_note", fields={"body": "x"}, event_id="e")
    assert dict(op.write_modes) == {}


def test_modes_travel_on_the_operation_for_the_fields_it_carries(tmp_path: Path) -> None:
    mapping = mapping_of(tmp_path, CONTACT)
    (op,) = mapping.apply(event(PERSON))
    assert dict(op.fields) == {
        "phone_e164": "+525512345678",
        "name": "Pao",
        "owner": "team-a",
        "wa_id": "521",
    }
    assert dict(op.write_modes) == {"name": "if_empty", "owner": "on_create"}
    # A field the event leaves empty is not sent, and so has no mode either.
    (op,) = mapping.apply(event({"contact": {"phone_e164": "+525512345678"}}))
    assert dict(op.write_modes) == {"owner": "on_create"}


def test_an_unknown_mode_is_reported_where_it_is(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "m.yaml",
        HEAD
        + textwrap.dedent(
            """
            events:
              whatsapp.message.received:
                - op: upsert_contact
                  fields:
                    name: {path: data.contact.profile_name, write: if_emtpy}
                    wa_id: {path: data.contact.wa_id, write: [always]}
            """
        ).lstrip("\n"),
    )
    assert errors_of(path) == [
        "m.yaml:7:56: events/whatsapp.message.received/0/fields/name/write: expected one of:"
        " always, on_create, if_empty; got \"if_emtpy\" (did you mean 'if_empty'?)",
        "m.yaml:8:50: events/whatsapp.message.received/0/fields/wa_id/write: expected one of:"
        " always, on_create, if_empty; got [\"always\"] (did you mean 'always'?)",
    ]


def test_an_override_changes_the_mode(tmp_path: Path) -> None:
    path = base_and_child(
        tmp_path,
        """
        overrides:
          whatsapp.message.received:
            upsert_contact:
              fields:
                name: {write: always}
                owner: {write: null}
                wa_id: {write: if_empty}
                phone_e164: {write: on_create}
        """,
    )
    (op,) = load_mapping(path).apply(event(PERSON))
    assert dict(op.write_modes) == {"wa_id": "if_empty", "phone_e164": "on_create"}


def test_a_new_source_keeps_the_inherited_mode(tmp_path: Path) -> None:
    path = base_and_child(
        tmp_path,
        """
        overrides:
          whatsapp.message.received:
            upsert_contact:
              fields:
                name: {coalesce: [{path: data.contact.username}, {path: data.contact.profile_name}]}
        """,
    )
    (op,) = load_mapping(path).apply(event(PERSON))
    assert op.fields["name"] == "Pao"
    assert op.write_modes["name"] == "if_empty"


def test_a_bad_mode_in_an_override_names_the_override(tmp_path: Path) -> None:
    path = base_and_child(
        tmp_path,
        """
        overrides:
          whatsapp.message.received:
            upsert_contact:
              fields:
                name: {write: never}
        """,
    )
    assert errors_of(path) == [
        "child.yaml:8:23: overrides/whatsapp.message.received/upsert_contact/fields/name/write:"
        ' expected one of: always, on_create, if_empty; got "never"',
    ]


# ------------------------------------------------------------------------- match order


def test_match_order_defaults_and_is_read_in_order(tmp_path: Path) -> None:
    assert mapping_of(tmp_path, CONTACT).match_order == ("key", "phone", "email")
    mapping = mapping_of(tmp_path, "match: [email, key]\n" + textwrap.dedent(CONTACT))
    assert mapping.match_order == ("email", "key")


def test_match_order_is_inherited_and_can_be_changed(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "version: 1\nmatch: [key, email]\n" + textwrap.dedent(CONTACT))
    head = "version: 1\nextends: base.yaml\nconnector: sql\n"
    inherited = write(tmp_path, "a.yaml", head)
    changed = write(tmp_path, "b.yaml", head + "match: [key, phone]\n")
    assert load_mapping(inherited).match_order == ("key", "email")
    assert load_mapping(changed).match_order == ("key", "phone")


def test_bad_match_settings_are_reported_where_they_are(tmp_path: Path) -> None:
    body = textwrap.dedent(CONTACT)
    unknown = write(tmp_path, "u.yaml", HEAD + "match: [key, fone]\n" + body)
    twice = write(tmp_path, "t.yaml", HEAD + "match: [key, phone, key]\n" + body)
    keyless = write(tmp_path, "k.yaml", HEAD + "match: [phone, email]\n" + body)
    empty = write(tmp_path, "e.yaml", HEAD + "match: []\n" + body)
    text = write(tmp_path, "s.yaml", HEAD + "match: key\n" + body)
    assert errors_of(unknown) == [
        'u.yaml:3:14: match/1: expected one of: key, phone, email; got "fone"'
        " (did you mean 'phone'?)"
    ]
    assert errors_of(twice) == ["t.yaml:3:21: match/2: 'key' is listed twice; give each rule once"]
    assert errors_of(keyless) == [
        "k.yaml:3:8: match: 'key' must be one of the rules: it finds the record an earlier"
        " attempt wrote under our key, so a retry never creates a duplicate"
    ]
    assert errors_of(empty) == ["e.yaml:3:8: match: [] should be non-empty"]
    assert errors_of(text) == ['s.yaml:3:8: match: expected array, got string "key"']


def test_match_belongs_to_a_mapping_not_a_fragment_file(tmp_path: Path) -> None:
    write(tmp_path, "frag.yaml", "version: 1\nmatch: [key]\n")
    path = write(tmp_path, "m.yaml", HEAD + "include: [frag.yaml]\n" + textwrap.dedent(CONTACT))
    assert errors_of(path) == [
        "frag.yaml:2:1: match: a fragment file holds only include, catalogs and fragments"
    ]


# ---------------------------------------------------------------------- connector check


def test_the_configured_connector_passes(tmp_path: Path) -> None:
    mapping = load_mapping(base_and_child(tmp_path, ""))
    assert check_connector(mapping, "hubspot") is mapping


def test_another_connector_is_refused_at_its_connector_key(tmp_path: Path) -> None:
    mapping = load_mapping(base_and_child(tmp_path, ""))
    with pytest.raises(MappingErrors) as info:
        check_connector(mapping, "salesforce")
    assert isinstance(info.value, ConfigError)
    (issue,) = info.value.errors
    assert (issue.file, issue.line, issue.column, issue.key) == (
        str(tmp_path / "child.yaml"),
        3,
        1,
        "connector",
    )
    assert issue.message == (
        "this mapping is for connector 'hubspot', but WA_BRIDGE_CONNECTOR is 'salesforce';"
        " set WA_BRIDGE_CONNECTOR=hubspot or point WA_BRIDGE_MAPPINGS_PATH at a mapping with"
        " connector: salesforce (the shipped one is mappings/salesforce.yaml)"
    )


def test_an_inherited_connector_is_refused_where_the_base_sets_it(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "version: 1\nconnector: rest\n" + textwrap.dedent(CONTACT))
    path = write(tmp_path, "child.yaml", "version: 1\nextends: base.yaml\n")
    with pytest.raises(MappingErrors) as info:
        check_connector(load_mapping(path), "sql")
    assert str(info.value.errors[0]).startswith(
        f"{tmp_path}/base.yaml:2:1: connector: this mapping is for connector 'rest', but"
        " WA_BRIDGE_CONNECTOR is 'sql';"
    )


def test_a_base_mapping_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "base.yaml", "version: 1\n" + textwrap.dedent(CONTACT))
    with pytest.raises(MappingErrors) as info:
        check_connector(load_mapping(path, allow_base=True), "sql")
    assert str(info.value.errors[0]) == (
        f"{path}:1:1: connector: names no connector (a base mapping, meant to be extended),"
        " but WA_BRIDGE_CONNECTOR is 'sql'; point WA_BRIDGE_MAPPINGS_PATH at a mapping with"
        " connector: sql (the shipped one is mappings/sql.yaml)"
    )
