"""Each expression operator, compiled from YAML and applied to a real event."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import fields_of, mapping_of


def one_field(tmp_path: Path, spec: str, catalogs: str = "") -> object:
    body = f"""
{catalogs}
events:
  whatsapp.message.received:
    - op: add_note
      fields:
        out: {spec}
"""
    return mapping_of(tmp_path, body)


DATA = {
    "message_id": "wamid.1",
    "contact": {"profile_name": "Ana", "country": "mx", "wa_id": "5215512345678"},
    "tags": ["a", "b"],
    "text": {"body": ""},
    "referral": {"source_url": "https://x.example/p?utm_source=fb&utm_campaign=w"},
    "timestamp": "2026-06-10T14:04:00-05:00",
    "epoch": "1781100000",
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("{path: data.message_id}", "wamid.1"),
        ("{path: data.contact.profile_name}", "Ana"),
        ("{path: 'data.tags[1]'}", "b"),
        ("{path: 'length(data.tags)', type: int}", 2),
        ("{path: data.nothing.deeper.still}", None),
        ("{const: fixed}", "fixed"),
        ("{concat: ['WA-', {path: data.message_id}]}", "WA-wamid.1"),
        ("{concat: ['WA-', {path: data.nothing}]}", None),
        ("{join: [{path: data.contact.profile_name}, {path: data.none}, x], sep: '|'}", "Ana|x"),
        ("{join: [{path: data.tags}], sep: ','}", "a,b"),
        ("{coalesce: [{path: data.text.body}, {path: data.contact.profile_name}, z]}", "Ana"),
        ("{coalesce: [{path: data.none}, fallback]}", "fallback"),
        ("{query_param: utm_source, from: {path: data.referral.source_url}}", "fb"),
        ("{query_param: utm_medium, from: {path: data.referral.source_url}}", None),
        ("{format_date: {path: data.timestamp}}", "2026-06-10"),
        ("{format_date: {path: data.timestamp}, format: '%H:%M'}", "19:04"),
        ("{format_date: {path: data.epoch}, format: '%Y-%m-%dT%H'}", "2026-06-10T14"),
        ("{upper: {path: data.contact.country}}", "MX"),
        ("{lower: {const: ABC}}", "abc"),
    ],
)
def test_expression(tmp_path: Path, spec: str, expected: object) -> None:
    mapping = one_field(tmp_path, spec)
    assert fields_of(mapping, DATA).get("out") == expected


CATS = """
catalogs:
  kinds:
    values: {text: chat, image: media}
    default: other
  strict:
    values: {text: chat}
"""


@pytest.mark.parametrize(
    ("spec", "message_type", "expected"),
    [
        ("{lookup: kinds, from: {path: data.message_type}}", "image", "media"),
        ("{lookup: kinds, from: {path: data.message_type}}", "sticker", "other"),
        ("{lookup: strict, from: {path: data.message_type}}", "sticker", None),
        ("{lookup: strict, from: {path: data.message_type}}", "text", "chat"),
    ],
)
def test_lookup(tmp_path: Path, spec: str, message_type: str, expected: object) -> None:
    mapping = one_field(tmp_path, spec, CATS)
    assert fields_of(mapping, {"message_type": message_type}).get("out") == expected


def test_event_attributes_are_paths(tmp_path: Path) -> None:
    body = """
events:
  whatsapp.message.received:
    - op: add_note
      fields:
        id: {path: id}
        wabaid: {path: wabaid}
        subject: {path: subject}
"""
    mapping = mapping_of(tmp_path, body)
    got = fields_of(mapping, {}, wabaid="W1", subject="+525512345678")
    assert got == {"id": "ev-1", "wabaid": "W1", "subject": "+525512345678"}


@pytest.mark.parametrize(
    "expr",
    ["data.tags[0]", "data.tags[-1]", "data.tags[5]", "data.contact[0]", "data.errors[0].code"],
)
def test_fast_paths_agree_with_jmespath(expr: str) -> None:
    import jmespath

    from wa_bridge.mapping.expressions import _path_getter

    for data in ({"tags": ["a", "b"], "errors": [{"code": 7}]}, {"tags": "ab"}, {"errors": {}}, {}):
        root = {"data": data}
        assert _path_getter(expr)(root) == jmespath.search(expr, root)
