"""schemas/<type>.json: valid draft 2020-12, and every event we produce validates against its own.

Runs on the project's own samples always, and on ../shared/fixtures/meta when present
(docs/*.json and every named payload in pywa's tests/data/updates/*.json).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from wa_bridge.events import EVENT_TYPES
from wa_bridge.normalize import normalize_webhook

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
OWN_SAMPLES = Path(__file__).resolve().parent / "samples" / "meta"
WHATSAPP_TYPES = [t for t in EVENT_TYPES if t.startswith("whatsapp.")]
RECEIVED_AT = datetime(2026, 6, 12, 9, 30, tzinfo=UTC)


@cache
def validator(event_type: str) -> Draft202012Validator:
    schema = orjson.loads((SCHEMAS / f"{event_type}.json").read_bytes())
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def assert_valid(payload: Any, where: str) -> list[str]:
    """Validate every event of ``payload``; return their ids."""
    ids = []
    for event in normalize_webhook(payload, received_at=RECEIVED_AT):
        doc = orjson.loads(event.to_json())
        errors = [
            f"{list(e.absolute_path)}: {e.message}" for e in validator(event.type).iter_errors(doc)
        ]
        assert not errors, f"{where}: {event.type} {errors}"
        ids.append(event.id)
    return ids


def test_date_time_format_is_really_checked() -> None:
    # jsonschema skips "date-time" silently unless rfc3339-validator is installed
    assert "date-time" in Draft202012Validator.FORMAT_CHECKER.checkers
    assert not Draft202012Validator.FORMAT_CHECKER.conforms("2026-06-10 12:00", "date-time")


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.json")), ids=lambda p: p.name)
def test_schema_files_are_valid(path: Path) -> None:
    schema = orjson.loads(path.read_bytes())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("event_type", WHATSAPP_TYPES)
def test_one_schema_per_whatsapp_type(event_type: str) -> None:
    schema = orjson.loads((SCHEMAS / f"{event_type}.json").read_bytes())
    assert schema["properties"]["type"] == {"const": event_type}
    assert set(schema["required"]) >= {"specversion", "id", "type", "source", "time", "data"}


@pytest.mark.parametrize("event_type", [t for t in EVENT_TYPES if t.startswith("inbox.")])
def test_one_schema_per_inbox_type(event_type: str) -> None:
    # events posted by the agents' inbox (normalize/inbox.py; tests/normalize/test_inbox.py)
    schema = orjson.loads((SCHEMAS / f"{event_type}.json").read_bytes())
    assert schema["properties"]["type"] == {"const": event_type}
    assert set(schema["required"]) >= {"specversion", "id", "type", "source", "time", "data"}


@pytest.mark.parametrize("path", sorted(OWN_SAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_own_samples_validate(path: Path) -> None:
    assert assert_valid(orjson.loads(path.read_bytes()), path.name)


def test_shared_docs_fixtures_validate(shared_fixtures: Path) -> None:
    files = sorted((shared_fixtures / "meta" / "docs").glob("*.json"))
    assert files
    ids: list[str] = []
    for path in files:
        found = assert_valid(orjson.loads(path.read_bytes()), path.name)
        assert found, path.name
        ids += found
    assert len(ids) == len(set(ids)), "two different items got one id"


def test_shared_pywa_named_payloads_validate(shared_fixtures: Path) -> None:
    files = sorted(
        (shared_fixtures / "meta" / "pywa" / "tests" / "data" / "updates").glob("*.json")
    )
    assert files
    for path in files:
        named = orjson.loads(path.read_bytes())
        for name, payload in named.items():  # template_components_update has a stray "all": kept
            assert assert_valid(payload, f"{path.name}:{name}")


def _first_event(sample: str) -> dict[str, Any]:
    payload = orjson.loads((OWN_SAMPLES / f"{sample}.json").read_bytes())
    return orjson.loads(normalize_webhook(payload, received_at=RECEIVED_AT)[0].to_json())


@pytest.mark.parametrize(
    ("sample", "break_it"),
    [
        ("text_mx", lambda d: d["data"]["contact"].update(nickname="x")),  # contact is closed
        ("text_mx", lambda d: d["data"].pop("message_id")),
        ("text_mx", lambda d: d.update(time="2026-06-10 12:00")),
        ("text_mx", lambda d: d.update(specversion="0.3")),
        ("text_mx", lambda d: d.pop("source")),
        ("text_mx", lambda d: d["data"]["contact"].update(phone_e164="5215550001234")),
        ("statuses_br", lambda d: d["data"].update(status="teleported")),
        ("echo_co", lambda d: d["data"].update(direction="inbound")),
        ("history_mx", lambda d: d["data"].update(direction="sideways")),
        ("history_mx", lambda d: d["data"]["history"].update(part="later")),
        ("history_mx", lambda d: d["data"].pop("history")),
        ("history_declined_cl", lambda d: d["data"].update(message_count=-1)),
        ("history_declined_cl", lambda d: d["data"]["errors"][0].pop("code")),
        ("contact_book_br", lambda d: d["data"].pop("action")),
        ("contact_book_br", lambda d: d["data"]["contact"].update(profile="x")),
        ("content_mixed_co", lambda d: d["data"]["attribution"].update(origin="guess")),
        ("content_mixed_co", lambda d: d["data"]["attribution"].update(utm_source=1)),
        ("content_mixed_co", lambda d: d["data"]["attribution"].pop("ctwa_clid")),
        ("order_mx", lambda d: d["data"]["order"].update(total="12999.5")),
        ("order_mx", lambda d: d["data"].update(display_text=7)),
    ],
)
def test_schemas_reject_broken_events(sample: str, break_it: Any) -> None:
    doc = _first_event(sample)
    assert not list(validator(doc["type"]).iter_errors(doc))
    broken = copy.deepcopy(doc)
    break_it(broken)
    assert list(validator(doc["type"]).iter_errors(broken))


def test_data_stays_open_for_fields_meta_adds() -> None:
    doc = _first_event("text_mx")
    doc["data"]["something_new"] = {"x": 1}
    assert not list(validator(doc["type"]).iter_errors(doc))
