"""Load-time errors: every class, with the exact file:line:column text a developer sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from wa_bridge.errors import ConfigError, MappingOutputInvalid
from wa_bridge.mapping import MappingErrors, load_mapping

from .helpers import event, fields_of, write


def errors_of(path: Path) -> list[str]:
    with pytest.raises(MappingErrors) as info:
        load_mapping(path)
    assert isinstance(info.value, ConfigError)
    assert str(info.value).splitlines()[1:] == [str(e) for e in info.value.errors]
    return [str(e).replace(f"{path.parent}/", "") for e in info.value.errors]


def test_unknown_key_with_suggestion(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "m.yaml",
        """
        connector: sql
        events:
          whatsapp.message.received:
            - op: add_note
              fields:
                body: {pth: data.text.body}
        """,
    )
    (msg,) = errors_of(path)
    assert msg.startswith(
        "m.yaml:6:16: events/whatsapp.message.received/0/fields/body/pth: "
        "unknown key 'pth' (did you mean 'path'?); expected one of: path, "
    )


def test_unknown_event_type_and_bad_enum(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "m.yaml",
        """
        connector: salesfroce
        events:
          whatsapp.message.recieved: none
          whatsapp.message.status:
            - op: add_note
              fields:
                status: {path: data.status, type: strng}
        """,
    )
    assert errors_of(path) == [
        "m.yaml:1:12: connector: expected one of: sql, rest, hubspot, salesforce;"
        " got \"salesfroce\" (did you mean 'salesforce'?)",
        "m.yaml:3:3: events/whatsapp.message.recieved: unknown key 'whatsapp.message.recieved'"
        " (did you mean 'whatsapp.message.received'?); expected one of: "
        + ", ".join(__import__("wa_bridge.events").events.EVENT_TYPES),
        "m.yaml:7:43: events/whatsapp.message.status/0/fields/status/type: expected one of:"
        ' string, int, decimal, bool, datetime, enum, phone, email; got "strng"'
        " (did you mean 'string'?)",
    ]


def test_bad_path_unknown_catalog_and_bad_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "m.yaml",
        """
        connector: sql
        catalogs:
          reasons: {values: [a, b]}
        events:
          whatsapp.message.received:
            - op: add_note
              when: {exists: "data.["}
              fields:
                a: {path: "data.contact.[", type: string}
                b: {path: data.x, catalog: reasonz}
                c: {path: data.x, type: int, default: many}
                d: {path: data.x, type: enum}
                e: {lookup: nope, from: {path: data.x}}
                f: {path: data.x, format: "%Y"}
        """,
    )
    assert errors_of(path) == [
        "m.yaml:7:22: events/whatsapp.message.received/0/when/exists:"
        " bad path 'data.[': Invalid jmespath expression: Incomplete expression",
        "m.yaml:9:19: events/whatsapp.message.received/0/fields/a/path:"
        " bad path 'data.contact.[': Invalid jmespath expression: Incomplete expression",
        "m.yaml:10:36: events/whatsapp.message.received/0/fields/b/catalog:"
        " unknown catalog 'reasonz'; known: reasons",
        "m.yaml:11:47: events/whatsapp.message.received/0/fields/c/default:"
        " default does not fit type 'int': expected an integer",
        "m.yaml:12:33: events/whatsapp.message.received/0/fields/d/type:"
        " type 'enum' needs 'values' (or a 'catalog')",
        "m.yaml:13:21: events/whatsapp.message.received/0/fields/e/lookup:"
        " unknown catalog 'nope'; known: reasons",
        "m.yaml:14:27: events/whatsapp.message.received/0/fields/f/format:"
        " 'format' only goes with format_date",
    ]


def test_source_count_and_structure_types(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "m.yaml",
        """
        connector: sql
        events:
          whatsapp.message.received:
            - op: add_note
              fields:
                a: {type: string}
                b: {path: data.x, const: 1}
                c: {path: data.x, required: "yes"}
            - fields: {}
        """,
    )
    assert errors_of(path) == [
        "m.yaml:8:37: events/whatsapp.message.received/0/fields/c/required:"
        ' expected boolean, got string "yes"',
        "m.yaml:9:7: events/whatsapp.message.received/1: 'op' is required here",
    ]
    path.write_text(path.read_text().replace('required: "yes"', "required: true"))
    path.write_text(path.read_text().replace("    - fields: {}\n", ""))
    assert [e.split(": ", 2)[2] for e in errors_of(path)] == [
        "expected exactly one of path, query_param, const, concat, join, coalesce, lookup,"
        " format_date, lower, upper; got none",
        "expected exactly one of path, query_param, const, concat, join, coalesce, lookup,"
        " format_date, lower, upper; got path, const",
    ]


def test_yaml_syntax_error_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, "m.yaml", "connector: sql\nevents: {a: [}\n")
    (msg,) = errors_of(path)
    assert msg.startswith("m.yaml:2:14: YAML syntax error")
    (missing,) = errors_of(tmp_path / "absent.yaml")
    assert missing.startswith("absent.yaml:1:1: cannot read file")


def test_required_top_level_keys(tmp_path: Path) -> None:
    assert errors_of(write(tmp_path, "m.yaml", "version: 1\n")) == [
        "m.yaml:1:1: 'connector' is required in a mapping file",
        "m.yaml:1:1: 'events' is required in a mapping file",
    ]


FRAGMENT = """
# the contact block
fragments:
  ident:
    wa_id: {path: data.contact.wa_id, type: string, max_length: 32}
    phone_e164: {path: data.contact.wa_id, type: phone}
"""


def test_include_and_use(tmp_path: Path) -> None:
    write(tmp_path, "fragments/contact.yaml", FRAGMENT)
    path = write(
        tmp_path,
        "m.yaml",
        """
        connector: sql
        include: [fragments/contact.yaml]
        events:
          whatsapp.message.received:
            - op: upsert_contact
              fields:
                $use: ident
                wa_id: {const: local, type: string, max_length: 5}
        """,
    )
    mapping = load_mapping(path)
    got = fields_of(mapping, {"contact": {"wa_id": "5215512345678"}})
    # the local wa_id overrides the fragment's; the fragment's phone_e164 is kept
    assert got == {"wa_id": "local", "phone_e164": "+525512345678"}
    # ...and an error in a fragment field names the fragment's own file and line
    with pytest.raises(MappingOutputInvalid) as info:
        mapping.apply(event({"contact": {"wa_id": "52"}}))
    assert f"{tmp_path}/fragments/contact.yaml:5: upsert_contact.phone_e164" in str(info.value)


def test_errors_in_a_fragment_name_the_fragment_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        "fragments/contact.yaml",
        FRAGMENT.replace("type: phone", "type: phone, values: [1]"),
    )
    path = write(
        tmp_path,
        "m.yaml",
        """
        connector: sql
        include: [fragments/contact.yaml, fragments/missing.yaml]
        events:
          whatsapp.message.received:
            - op: upsert_contact
              fields: {$use: [ident, idnet]}
        """,
    )
    assert errors_of(path) == [
        "fragments/missing.yaml:1:1: cannot read file: No such file or directory",
    ]
    (tmp_path / "fragments/missing.yaml").write_text("catalogs: {}\n")
    assert errors_of(path) == [
        "fragments/contact.yaml:5:57: fragments/ident/phone_e164/values:"
        " 'values' only goes with type 'enum'",
        "m.yaml:6:30: events/whatsapp.message.received/0/fields/$use/1:"
        " unknown fragment 'idnet' (did you mean 'ident'?); known: ident",
    ]


def test_fragment_file_may_not_hold_events(tmp_path: Path) -> None:
    write(tmp_path, "f.yaml", "events: {}\n")
    path = write(tmp_path, "m.yaml", "connector: sql\ninclude: [f.yaml]\nevents: {}\n")
    assert errors_of(path) == [
        "f.yaml:1:1: events: a fragment file holds only include, catalogs and fragments"
    ]
