"""Every field type, catalogs, `when`, `required`, `default` and lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from wa_bridge.errors import MappingOutputInvalid
from wa_bridge.mapping import CompiledMapping

from .helpers import event, fields_of, mapping_of


def typed(tmp_path: Path, options: str, extra: str = "") -> CompiledMapping:
    body = f"""
{extra}
events:
  whatsapp.message.received:
    - op: add_note
      fields:
        out: {{path: data.v, {options}}}
"""
    return mapping_of(tmp_path, body)


@pytest.mark.parametrize(
    ("options", "value", "expected"),
    [
        ("type: string", "hola", "hola"),
        ("type: string", 42, "42"),
        ("type: string, max_length: 4", "abcd", "abcd"),
        ("type: int", 7, 7),
        ("type: int", "-12", -12),
        ("type: decimal", "1249.90", Decimal("1249.90")),
        ("type: decimal", 0.1, Decimal("0.1")),
        ("type: bool", "yes", True),
        ("type: bool", False, False),
        ("type: datetime", "2026-06-10T14:04:00Z", datetime(2026, 6, 10, 14, 4, tzinfo=UTC)),
        (
            "type: datetime",
            "2026-06-10T09:04:00-05:00",
            datetime(2026, 6, 10, 9, 4, tzinfo=timezone(timedelta(hours=-5))),
        ),
        ("type: datetime", "1781100000", datetime(2026, 6, 10, 14, 0, tzinfo=UTC)),
        ("type: enum, values: [open, resolved]", "open", "open"),
        ("type: phone", "5215512345678", "+525512345678"),
        ("type: phone", "+54 9 11 2345-6789", "+5491123456789"),
        ("type: email", "Ana@Example.COM", "Ana@example.com"),
        ("type: string, list: true", ["a", "b"], ("a", "b")),
        ("type: int, list: true", "3", (3,)),
    ],
)
def test_valid_values(tmp_path: Path, options: str, value: Any, expected: Any) -> None:
    assert fields_of(typed(tmp_path, options), {"v": value})["out"] == expected


@pytest.mark.parametrize(
    ("options", "value", "reason"),
    [
        ("type: string", {"a": 1}, "expected a single value"),
        ("type: string, max_length: 3", "abcd", "longer than max_length 3 (4 characters)"),
        ("type: string, min_length: 2", "a", "shorter than min_length 2"),
        ("type: int", "12a", "expected an integer"),
        ("type: int", True, "expected an integer, got a boolean"),
        ("type: decimal", "NaN", "expected a finite decimal number"),
        ("type: decimal", "twelve", "expected a decimal number"),
        # The decimal rules every reader shares (wa_bridge.normalize.decimals): these were
        # taken here and refused by the inbox (a boolean's message was "got a boolean").
        ("type: decimal", "1e999999", "expected at most 40 digits long"),
        ("type: decimal", 1e300, "expected at most 40 digits long"),
        ("type: decimal", "1" * 50, "expected at most 40 characters"),
        ("type: decimal", 10**45, "expected at most 40 characters"),
        ("type: decimal", True, "expected a decimal number, as a string or a number, not a b"),
        ("type: bool", "maybe", "expected a boolean"),
        ("type: datetime", "2026-06-10T14:04:00", "expected an RFC 3339 time"),
        ("type: datetime", "yesterday", "expected an RFC 3339 time"),
        ("type: enum, values: [open, resolved]", "closed", "expected one of: open, resolved"),
        ("type: phone", "12", "expected a phone number"),
        ("type: email", "not-an-email", "expected an email address"),
        ("type: string, list: true", [["nested"]], "expected a single value"),
    ],
)
def test_invalid_values(tmp_path: Path, options: str, value: Any, reason: str) -> None:
    mapping = typed(tmp_path, options)
    with pytest.raises(MappingOutputInvalid) as info:
        mapping.apply(event({"v": value}))
    assert f"{tmp_path}/m.yaml:7: add_note.out: {reason}" in str(info.value)
    assert info.value.location == f"{tmp_path}/m.yaml:7"
    assert info.value.field == "out"


def test_phone_numbers_are_masked_in_errors(tmp_path: Path) -> None:
    mapping = typed(tmp_path, "type: int")
    with pytest.raises(MappingOutputInvalid) as info:
        mapping.apply(event({"v": "+52 1 55 1234 5678 ext"}))
    message = str(info.value)
    assert "1234 5678" not in message
    assert "** 5678" in message


def test_long_values_are_truncated_in_errors(tmp_path: Path) -> None:
    mapping = typed(tmp_path, "type: int")
    with pytest.raises(MappingOutputInvalid) as info:
        mapping.apply(event({"v": "x" * 500}))
    assert "x" * 60 not in str(info.value)
    assert "…" in str(info.value)


def test_required_missing_and_default(tmp_path: Path) -> None:
    mapping = typed(tmp_path, "type: string, required: true")
    with pytest.raises(MappingOutputInvalid, match=r"add_note\.out: required, but the source"):
        mapping.apply(event({"v": None}))
    with pytest.raises(MappingOutputInvalid, match="required"):
        mapping.apply(event({"v": ""}))
    defaulted = typed(tmp_path, "type: int, required: true, default: 5")
    assert fields_of(defaulted, {})["out"] == 5


def test_null_fields_are_left_out(tmp_path: Path) -> None:
    assert fields_of(typed(tmp_path, "type: string"), {}) == {}


def test_all_invalid_fields_are_named_and_no_operation_escapes(tmp_path: Path) -> None:
    body = """
events:
  whatsapp.message.received:
    - op: upsert_contact
      fields:
        ok: {path: data.ok}
    - op: add_note
      fields:
        a: {path: data.a, type: int}
        b: {path: data.b, type: bool}
"""
    mapping = mapping_of(tmp_path, body)
    with pytest.raises(MappingOutputInvalid) as info:
        mapping.apply(event({"ok": "x", "a": "no", "b": "no way"}))
    text = str(info.value)
    assert "add_note.a: expected an integer; got 'no'" in text
    assert "add_note.b: expected a boolean (true/false); got 'no way'" in text


CATALOGS = """
catalogs:
  channels:
    values: {text: chat, image: media}
    default: other
  strict:
    values: [open, resolved]
"""


@pytest.mark.parametrize(
    ("options", "value", "expected"),
    [
        ("catalog: channels", "image", "media"),
        ("catalog: channels", "sticker", "other"),
        ("catalog: strict", "open", "open"),
        ("catalog: strict, type: enum", "resolved", "resolved"),
        ("catalog: channels, list: true", ["text", "x"], ("chat", "other")),
    ],
)
def test_catalogs(tmp_path: Path, options: str, value: Any, expected: Any) -> None:
    mapping = typed(tmp_path, options, CATALOGS)
    assert fields_of(mapping, {"v": value})["out"] == expected


def test_unknown_catalog_value_without_default_is_an_error(tmp_path: Path) -> None:
    mapping = typed(tmp_path, "catalog: strict", CATALOGS)
    with pytest.raises(MappingOutputInvalid) as info:
        mapping.apply(event({"v": "closed"}))
    assert str(info.value) == (
        f"{tmp_path}/m.yaml:14: add_note.out: 'closed' is not in catalog 'strict' (open, resolved)"
    )


WHEN = """
events:
  whatsapp.message.received:
    - op: upsert_contact
      when: {cond}
      fields:
        x: {{const: 1, type: int}}
        y: {{const: 2, type: int, when: {{exists: data.y}}}}
"""


@pytest.mark.parametrize(
    ("cond", "data", "emitted"),
    [
        ("{exists: data.a}", {"a": 0}, True),
        ("{exists: data.a}", {}, False),
        ("{missing: data.a}", {}, True),
        ("{equals: [{path: data.a}, x]}", {"a": "x"}, True),
        ("{equals: [{path: data.a}, 1]}", {"a": True}, False),
        ("{in: [{path: data.a}, [x, y]]}", {"a": "y"}, True),
        ("{in: [{path: data.a}, [x, y]]}", {"a": "z"}, False),
        ("{jmespath: 'length(data.l) > `1`'}", {"l": [1, 2]}, True),
        ("'data.l'", {"l": []}, False),
        ("'data.l'", {"l": [0]}, True),
        ("{all: [{exists: data.a}, {exists: data.b}]}", {"a": 1}, False),
        ("{any: [{exists: data.a}, {exists: data.b}]}", {"a": 1}, True),
        ("{not: {exists: data.a}}", {"a": 1}, False),
    ],
)
def test_when(tmp_path: Path, cond: str, data: dict[str, Any], emitted: bool) -> None:
    mapping = mapping_of(tmp_path, WHEN.format(cond=cond))
    assert bool(mapping.apply(event(data))) is emitted


def test_field_when(tmp_path: Path) -> None:
    mapping = mapping_of(tmp_path, WHEN.format(cond="{exists: data.a}"))
    assert fields_of(mapping, {"a": 1}) == {"x": 1}
    assert fields_of(mapping, {"a": 1, "y": 0}) == {"x": 1, "y": 2}


def test_operation_metadata_and_no_rule(tmp_path: Path) -> None:
    body = """
events:
  whatsapp.message.received:
    - op: upsert_contact
    - op: none
    - op: add_note
  whatsapp.template.status: none
"""
    mapping = mapping_of(tmp_path, body)
    ops = mapping.apply(event({}, subject="+525512345678"))
    assert [(o.kind, o.index, o.source) for o in ops] == [
        ("upsert_contact", 0, f"{tmp_path}/m.yaml:5"),
        ("add_note", 1, f"{tmp_path}/m.yaml:7"),
    ]
    assert all(o.contact_key == "+525512345678" and o.event_id == "ev-1" for o in ops)
    assert mapping.apply(event({}, type_="whatsapp.template.status")) == []
    assert mapping.apply(event({}, type_="inbox.conversation.csat")) == []
    assert mapping.connector == "sql"
