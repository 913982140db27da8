"""The generated per-type functions answer exactly what the rules' closures answer.

``CompiledMapping.apply`` runs the event type's generated function
(:mod:`wa_bridge.mapping.codegen`) and falls back to ``apply_by_rules`` where that stops;
``apply_by_rules`` is the reference. Each test compares both: the same operations (kind,
fields, values and their types, keys, indexes, sources, write modes), or the same
``MappingOutputInvalid`` with the same message, file:line and field. (Generated events:
``test_mapping_property.py`` compares both on each.)
"""

from __future__ import annotations

import linecache
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.mapping.helpers import answer_of, event, fields_of, mapping_of
from tests.mapping.test_mapping_property import MAPPINGS

from wa_bridge.errors import MappingOutputInvalid
from wa_bridge.events import CanonicalEvent
from wa_bridge.mapping import CompiledMapping
from wa_bridge.mapping.codegen import NotInline
from wa_bridge.normalize import normalize_webhook

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "tests/samples/meta").glob("*.json"))
NOW = datetime(2026, 6, 10, 14, 5, tzinfo=UTC)


def _same_answer(mapping: CompiledMapping, ev: CanonicalEvent) -> Any:
    generated = answer_of(mapping.apply, ev)
    assert generated == answer_of(mapping.apply_by_rules, ev), (mapping.path, ev.type)
    return generated


def _sample_events() -> list[CanonicalEvent]:
    return [
        e for p in SAMPLES for e in normalize_webhook(orjson.loads(p.read_bytes()), received_at=NOW)
    ]


def test_every_shipped_mapping_maps_every_sample_as_its_rules_do() -> None:
    events = _sample_events()
    assert len(events) > 60
    mapped = 0
    for mapping in MAPPINGS:
        for ev in events:
            answer = _same_answer(mapping, ev)
            mapped += isinstance(answer, list) and bool(answer)
    assert mapped > 100  # the comparison saw operations, not only empty answers


def test_the_generated_function_itself_maps_a_valid_event() -> None:
    """No fallback for the common event: the type's own function gives the operations."""
    inbound = next(e for e in _sample_events() if e.type == "whatsapp.message.received")
    for mapping in MAPPINGS:
        ops = mapping._appliers[inbound.type](inbound)
        assert ops == mapping.apply_by_rules(inbound)
        assert ops, mapping.path


EDGES = """
events:
  whatsapp.message.received:
    - op: add_note
      when: {in: [{path: data.kind}, [text, 1, true, null]]}
      fields:
        message_id: {path: data.message_id, type: string, required: true, max_length: 8}
        body:
          coalesce: [{path: data.a}, "", {path: data.b.c}, fb]
          type: string
          max_length: 5
        tags: {path: data.tags, type: string, list: true}
        count: {path: data.count, type: int, default: 7}
        flag: {path: data.flag, type: bool}
        seen: {when: {exists: data.seen}, path: data.seen, type: datetime}
        gone: {when: {missing: data.seen}, const: "it's \\"gone\\"\\n", type: string}
        quoted: {const: "a'b\\\\c\\"", type: string}
        from_root: {path: source, type: string}
        nowhere: {path: nothing.here, type: string}
        shout: {upper: {path: data.a}, type: string}
        hush: {lower: {path: data.b.c}}
    - op: upsert_contact
      when: {exists: subject}
      fields:
        phone: {path: data.phone, type: phone}
"""

EDGE_DATA = [
    {"kind": "text", "message_id": "m1"},
    {"kind": 1, "message_id": "m1", "a": "", "b": {"c": "xyz"}},
    {"kind": True, "message_id": "m1", "a": None, "b": "not a dict"},
    {"kind": None, "message_id": "m1"},
    {"kind": 1.0, "message_id": "m1"},
    {"kind": False, "message_id": "m1"},
    {"kind": "other", "message_id": "m1"},
    {"kind": "text", "message_id": "m1", "tags": ["a", None, "b"], "count": "12", "flag": "true"},
    {"kind": "text", "message_id": "m1", "tags": "solo", "count": 0, "flag": False},
    {"kind": "text", "message_id": "m1", "tags": [], "count": "", "seen": "2026-06-10T14:00:00Z"},
    {"kind": "text", "message_id": "m1", "seen": "not a time"},
    {"kind": "text", "message_id": "m1", "a": "too long for five"},
    {"kind": "text", "message_id": "m1", "a": 12345},
    {"kind": "text", "message_id": ""},
    {"kind": "text"},
    {"kind": "text", "message_id": "waytoolongid"},
    {"kind": "text", "message_id": ["m1"]},
    {"kind": "text", "message_id": {"x": 1}},
    {"kind": "text", "message_id": "m1", "count": "twelve"},
    {"kind": "text", "message_id": "m1", "phone": "+525512345678"},
    {"kind": "text", "message_id": "m1", "phone": "not a phone"},
    {"kind": "text", "message_id": "m1", "a": "mx", "b": {"c": "ÉTÉ"}},
    {"kind": "text", "message_id": "m1", "a": ["mx"], "b": {"c": 7}},
    {"kind": "text", "message_id": "m1", "a": True, "b": {"c": ["X"]}},
]


@pytest.mark.parametrize("payload", EDGE_DATA)
@pytest.mark.parametrize("subject", [None, "+525512345678"])
def test_edge_values_get_the_rules_answer(
    tmp_path: Path, payload: dict[str, Any], subject: str | None
) -> None:
    mapping = mapping_of(tmp_path, EDGES)
    _same_answer(mapping, event(payload, subject=subject))


@pytest.mark.parametrize("data", [[], ["contact"], "text", None])
def test_data_that_is_not_an_object_finds_nothing_as_the_rules_find(
    tmp_path: Path, data: Any
) -> None:
    # the generated function reads data's keys once, at its top: from anything but a
    # dict (an event built in code, not parsed) every path finds nothing
    mapping = mapping_of(tmp_path, EDGES)
    ev = CanonicalEvent("ev-1", "whatsapp.message.received", "whatsapp:1", "2026-06-10", data)
    answer = _same_answer(mapping, ev)
    assert answer[0] == "refused", answer  # message_id is required, and nothing found it
    assert "message_id" in answer[1] and "required" in answer[1], answer


def test_mapping_text_never_becomes_code(tmp_path: Path) -> None:
    """Quotes, backslashes and newlines in values stay data."""
    mapping = mapping_of(tmp_path, EDGES)
    (op,) = mapping.apply(event({"kind": "text", "message_id": "m1"}))
    assert op.fields["quoted"] == "a'b\\c\""
    assert op.fields["gone"] == 'it\'s "gone"\n'
    assert op.fields["body"] == "fb"
    source = "".join(linecache.getlines(f"<mapping {mapping.path}: whatsapp.message.received>"))
    assert "def apply(event):" in source  # a traceback through it shows its lines


def test_a_refused_event_is_explained_by_the_rules(tmp_path: Path) -> None:
    """The generated function stops; the closures name the field, its file and line."""
    mapping = mapping_of(tmp_path, EDGES)
    missing = event({"kind": "text"})
    with pytest.raises(NotInline):
        mapping._appliers[missing.type](missing)
    with pytest.raises(MappingOutputInvalid, match=r"m\.yaml:\d+: add_note\.message_id: required"):
        mapping.apply(missing)
    with pytest.raises(MappingOutputInvalid) as refused:
        mapping.apply(event({"kind": "text", "message_id": "m1", "count": "twelve"}))
    assert refused.value.field == "count"
    assert "m.yaml:" in str(refused.value)


def test_a_long_coalesce_still_loads_and_answers_as_the_rules_do(tmp_path: Path) -> None:
    """Past the inline limit (one nested block per item) the closure computes it."""
    paths = ", ".join(f"{{path: data.p{i}}}" for i in range(120))
    mapping = mapping_of(
        tmp_path,
        f"""
        events:
          whatsapp.message.received:
            - op: add_note
              fields:
                body: {{coalesce: [{paths}], type: string}}
        """,
    )
    for payload in ({"p119": "last"}, {"p3": "", "p17": "x"}, {}):
        _same_answer(mapping, event(payload))
    assert fields_of(mapping, {"p119": "last"}) == {"body": "last"}
