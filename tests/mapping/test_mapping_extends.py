"""``extends``: a mapping inherits another's events, catalogs and fragments and overrides
single event types, rules and field keys; every error names the file that holds it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from wa_bridge.errors import MappingOutputInvalid
from wa_bridge.mapping import MappingErrors, load_mapping

from .helpers import event, fields_of, write

BASE = """
version: 1
catalogs:
  channel: {values: {text: chat, image: media}, default: other}
fragments:
  who:
    wa_id: {path: data.contact.wa_id, type: string, max_length: 32}
events:
  whatsapp.message.received:
    - op: add_note
      fields:
        $use: who
        message_id: {path: data.message_id, type: string, required: true}
        channel: {path: data.message_type, catalog: channel}
        body:
          coalesce: [{path: data.text.body}, {path: data.caption}]
          type: string
          max_length: 10
  whatsapp.message.status:
    - op: add_note
      id: delivered
      when: {equals: [{path: data.status}, delivered]}
      fields:
        status: {const: delivered}
    - op: add_note
      id: read
      when: {equals: [{path: data.status}, read]}
      fields:
        status: {const: read}
  whatsapp.template.status: none
"""

NOTE = {"message_id": "w1", "message_type": "text", "contact": {"wa_id": "521"}}


def errors_of(path: Path, *, allow_base: bool = False) -> list[str]:
    with pytest.raises(MappingErrors) as info:
        load_mapping(path, allow_base=allow_base)
    return [str(e).replace(f"{path.parent}/", "") for e in info.value.errors]


def child(tmp_path: Path, body: str, *, name: str = "child.yaml") -> Path:
    write(tmp_path, "base.yaml", BASE)
    head = "version: 1\nextends: base.yaml\nconnector: rest\n"
    return write(tmp_path, name, head + textwrap.dedent(body).lstrip("\n"))


def test_a_file_with_only_extends_and_connector_is_the_base(tmp_path: Path) -> None:
    mapping = load_mapping(child(tmp_path, ""))
    base = load_mapping(tmp_path / "base.yaml", allow_base=True)
    assert (mapping.connector, base.connector) == ("rest", "")
    assert mapping.extends == (f"{tmp_path}/base.yaml",)
    assert mapping.event_types == base.event_types
    data = {**NOTE, "text": {"body": "hola"}}
    expected = {"wa_id": "521", "message_id": "w1", "channel": "chat", "body": "hola"}
    assert fields_of(mapping, data) == fields_of(base, data) == expected


def test_a_base_mapping_needs_allow_base(tmp_path: Path) -> None:
    path = write(tmp_path, "base.yaml", BASE)
    assert errors_of(path) == ["base.yaml:1:1: 'connector' is required in a mapping file"]


def test_override_one_key_of_one_field(tmp_path: Path) -> None:
    path = child(
        tmp_path,
        """
        overrides:
          whatsapp.message.received:
            add_note:
              fields:
                body: {max_length: 20}
        """,
    )
    mapping = load_mapping(path)
    long = {**NOTE, "text": {"body": "x" * 20}}
    assert fields_of(mapping, long)["body"] == "x" * 20  # the base's coalesce still applies
    assert fields_of(mapping, {**NOTE, "caption": "cap"})["body"] == "cap"
    with pytest.raises(MappingOutputInvalid) as info:
        mapping.apply(event({**NOTE, "text": {"body": "x" * 21}}))
    # the limit that failed is the override's: its file and line
    assert info.value.location == f"{path}:8"
    assert str(info.value).startswith(f"{path}:8: add_note.body: longer than max_length 20")
    # ...while a check the override left alone names the base file
    with pytest.raises(MappingOutputInvalid) as info:
        mapping.apply(event({"message_type": "text"}))
    assert info.value.location == f"{tmp_path}/base.yaml:12"
    with pytest.raises(MappingOutputInvalid) as info:
        mapping.apply(event({**NOTE, "contact": {"wa_id": "9" * 33}}))
    assert info.value.location == f"{tmp_path}/base.yaml:6"  # a fragment field, in the base


def test_a_new_source_replaces_the_inherited_one_and_null_removes(tmp_path: Path) -> None:
    path = child(
        tmp_path,
        """
        overrides:
          whatsapp.message.received:
            add_note:
              fields:
                body: {path: data.caption, max_length: null}
                channel: null
                wa_id: {catalog: null, required: true}
                extra: {const: x, type: string, max_length: null}
        """,
    )
    mapping = load_mapping(path)
    got = fields_of(mapping, {**NOTE, "text": {"body": "ignored"}, "caption": "c" * 50})
    assert got == {"wa_id": "521", "message_id": "w1", "body": "c" * 50, "extra": "x"}
    with pytest.raises(MappingOutputInvalid) as info:
        mapping.apply(event({"message_id": "w1"}))
    assert str(info.value) == f"{path}:10: add_note.wa_id: required, but the source gave no value"


def test_rules_are_named_by_id_or_by_a_unique_op(tmp_path: Path) -> None:
    path = child(
        tmp_path,
        """
        overrides:
          whatsapp.message.status:
            read:
              when: {in: [{path: data.status}, [read, played]]}
              fields:
                status: {path: data.status}
        """,
    )
    mapping = load_mapping(path)
    played = mapping.apply(event({"status": "played"}, type_="whatsapp.message.status"))
    assert [dict(op.fields) for op in played] == [{"status": "played"}]
    # the rule keeps its own place in the base: its operations say where they come from
    assert played[0].source == f"{tmp_path}/base.yaml:24"
    delivered = mapping.apply(event({"status": "delivered"}, type_="whatsapp.message.status"))
    assert [dict(op.fields) for op in delivered] == [{"status": "delivered"}]


def test_null_drops_a_rule_condition(tmp_path: Path) -> None:
    path = child(
        tmp_path,
        """
        overrides:
          whatsapp.message.status:
            delivered: {when: null}
        """,
    )
    ops = load_mapping(path).apply(event({"status": "read"}, type_="whatsapp.message.status"))
    assert [dict(op.fields) for op in ops] == [{"status": "delivered"}, {"status": "read"}]


def test_events_replace_whole_event_types_and_names_replace_catalogs(tmp_path: Path) -> None:
    path = child(
        tmp_path,
        """
        catalogs:
          channel: {values: {text: TXT}}
        fragments:
          who:
            wa_id: {path: data.contact.wa_id, type: string, max_length: 2}
        events:
          whatsapp.template.status:
            - op: add_note
              fields: {status: {path: data.event}}
        """,
    )
    mapping = load_mapping(path)
    # late binding: the inherited rule uses the child's catalog and fragment
    with pytest.raises(MappingOutputInvalid) as info:
        mapping.apply(event(NOTE))
    assert str(info.value).startswith(f"{path}:8: add_note.wa_id: longer than max_length 2")
    assert fields_of(mapping, {**NOTE, "contact": {"wa_id": "52"}})["channel"] == "TXT"
    ops = mapping.apply(event({"event": "APPROVED"}, type_="whatsapp.template.status"))
    assert [(op.kind, dict(op.fields), op.source) for op in ops] == [
        ("add_note", {"status": "APPROVED"}, f"{path}:11")
    ]


def test_chains_inherit_connector_and_overrides(tmp_path: Path) -> None:
    child(
        tmp_path,
        """
        overrides:
          whatsapp.message.received:
            add_note:
              fields:
                body: {max_length: 20}
        """,
        name="middle.yaml",
    )
    leaf = write(
        tmp_path,
        "sub/leaf.yaml",
        """
        extends: ../middle.yaml
        overrides:
          whatsapp.message.received:
            add_note:
              fields:
                body: {type: string}
        """,
    )
    mapping = load_mapping(leaf)
    assert mapping.connector == "rest"
    assert mapping.extends == (f"{tmp_path}/middle.yaml", f"{tmp_path}/base.yaml")
    with pytest.raises(MappingOutputInvalid) as info:
        mapping.apply(event({**NOTE, "text": {"body": "x" * 21}}))
    # type and max_length are both checks: the latest file that set one of them is named
    assert info.value.location == f"{leaf}:6"
    assert "longer than max_length 20" in str(info.value)


def test_errors_in_the_base_name_the_base_file(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE.replace("max_length: 32", "max_length: 0"))
    path = write(tmp_path, "child.yaml", "extends: base.yaml\nconnector: sql\n")
    assert errors_of(path) == [
        "base.yaml:6:65: fragments/who/wa_id/max_length: 0 is less than the minimum of 1"
    ]
    write(tmp_path, "base.yaml", BASE.replace("catalog: channel", "catalog: chanel"))
    assert errors_of(path) == [
        "base.yaml:13:53: events/whatsapp.message.received/0/fields/channel/catalog:"
        " unknown catalog 'chanel'; known: channel",
    ]


def test_errors_in_an_override_name_the_override(tmp_path: Path) -> None:
    path = child(
        tmp_path,
        """
        overrides:
          whatsapp.message.received:
            add_note:
              fields:
                message_id: {type: int, max_length: 5}
                body: {max_lenght: 5}
            upsert_case:
              fields: {a: {const: 1}}
          whatsapp.message.status:
            add_note: {when: null}
            unread: {when: null}
          whatsapp.template.status:
            none: {when: null}
          whatsapp.user.preferences:
            set_consent: {when: null}
        """,
    )
    assert errors_of(path) == [
        "child.yaml:9:16: overrides/whatsapp.message.received/add_note/fields/body/max_lenght:"
        " unknown key 'max_lenght' (did you mean 'max_length'?); expected one of: "
        "path, const, concat, join, sep, coalesce, lookup, query_param, from, format_date,"
        " format, lower, upper, type, required, default, catalog, values, max_length,"
        " min_length, list, when, description",
    ]
    path.write_text(path.read_text().replace("max_lenght", "max_length"))
    assert errors_of(path) == [
        "child.yaml:8:33: overrides/whatsapp.message.received/add_note/fields/message_id/"
        "max_length: 'max_length' does not apply to type 'int'",
        "child.yaml:10:5: overrides/whatsapp.message.received/upsert_case:"
        " no rule 'upsert_case' here; the rules are: add_note",
        "child.yaml:13:5: overrides/whatsapp.message.status/add_note: 2 rules have op"
        " 'add_note' (base.yaml:19:7, base.yaml:24:7); name one by its id: delivered, read",
        "child.yaml:14:5: overrides/whatsapp.message.status/unread:"
        " no rule 'unread' here (did you mean 'read'?); the rules are: delivered, read",
        "child.yaml:16:5: overrides/whatsapp.template.status/none: the inherited mapping"
        " is 'none' (no rules); map it under 'events:' instead",
        "child.yaml:17:3: overrides/whatsapp.user.preferences:"
        " no inherited rules for whatsapp.user.preferences; map it under 'events:'",
    ]


def test_overrides_need_something_to_override(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "m.yaml",
        """
        connector: sql
        events:
          whatsapp.message.received: [{op: add_note}]
        overrides:
          whatsapp.message.received:
            add_note: {when: null}
        """,
    )
    assert errors_of(path) == [
        "m.yaml:4:1: overrides: 'overrides' change inherited rules:"
        " this file extends none; edit its events"
    ]
    path = child(
        tmp_path,
        """
        events:
          whatsapp.message.received: [{op: add_note}]
        overrides:
          whatsapp.message.received:
            add_note: {when: null}
          whatsapp.message.status:
            read:
              fields: {gone: null}
        """,
    )
    assert errors_of(path) == [
        "child.yaml:7:3: overrides/whatsapp.message.received: this file maps"
        " whatsapp.message.received under 'events:': change that rule instead",
        "child.yaml:11:16: overrides/whatsapp.message.status/read/fields/gone:"
        " no inherited field 'gone' to remove",
    ]


def test_extends_cycles_and_missing_files_are_reported_where_they_are_named(
    tmp_path: Path,
) -> None:
    write(tmp_path, "a.yaml", "extends: sub/b.yaml\nconnector: sql\n")
    write(tmp_path, "sub/b.yaml", "extends: ../a.yaml\n")
    assert errors_of(tmp_path / "a.yaml") == [
        "sub/b.yaml:1:10: extends: extends cycle: a.yaml → sub/b.yaml → a.yaml"
    ]
    write(tmp_path, "self.yaml", "extends: self.yaml\nconnector: sql\nevents: {}\n")
    assert errors_of(tmp_path / "self.yaml") == [
        "self.yaml:1:10: extends: extends cycle: self.yaml → self.yaml"
    ]
    write(tmp_path, "orphan.yaml", "version: 1\nextends: nowhere.yaml\nconnector: sql\n")
    assert errors_of(tmp_path / "orphan.yaml") == [
        "orphan.yaml:2:10: extends: cannot read nowhere.yaml: no such file",
    ]


def test_a_fragment_file_may_not_extend(tmp_path: Path) -> None:
    write(tmp_path, "f.yaml", "extends: base.yaml\n")
    path = child(tmp_path, "include: [f.yaml]\n")
    assert errors_of(path) == [
        "f.yaml:1:1: extends: a fragment file holds only include, catalogs and fragments"
    ]


def test_same_op_rules_without_ids_cannot_be_told_apart(tmp_path: Path) -> None:
    write(
        tmp_path,
        "base.yaml",
        """
        events:
          whatsapp.message.received:
            - op: upsert_case
            - op: upsert_case
        """,
    )
    path = write(
        tmp_path,
        "child.yaml",
        """
        extends: base.yaml
        connector: sql
        overrides:
          whatsapp.message.received:
            upsert_case: {when: data.x}
        """,
    )
    assert errors_of(path) == [
        "child.yaml:5:5: overrides/whatsapp.message.received/upsert_case: 2 rules have op"
        " 'upsert_case' (base.yaml:3:7, base.yaml:4:7); give the one to change an 'id'"
        " and name it by that",
    ]
