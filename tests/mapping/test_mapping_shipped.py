"""The shipped mappings load, their own test files pass, and the schema knows every event."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wa_bridge.events import EVENT_TYPES
from wa_bridge.mapping import load_mapping
from wa_bridge.mapping.testing import find_test_files, run_test_file

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "mappings").glob("*.yaml"))


def test_three_connectors_shipped() -> None:
    assert {load_mapping(p).connector for p in SHIPPED} == {"sql", "rest", "hubspot"}


@pytest.mark.parametrize("path", find_test_files(ROOT / "mappings"), ids=lambda p: p.name)
def test_shipped_mapping_tests_pass(path: Path) -> None:
    results = run_test_file(path)
    assert results
    failed = [f"{r.where} {r.name}\n{r.detail}" for r in results if not r.passed]
    assert not failed, "\n".join(failed)


def test_schema_lists_every_event_type() -> None:
    schema = json.loads((ROOT / "schemas/mapping.schema.json").read_text())
    assert list(schema["properties"]["events"]["properties"]) == list(EVENT_TYPES)


def test_shipped_mappings_on_shared_webhooks(shared_fixtures: Path) -> None:
    from datetime import UTC, datetime

    from wa_bridge.errors import MappingOutputInvalid
    from wa_bridge.normalize import normalize_webhook

    mapping = load_mapping(ROOT / "mappings/sql.yaml")
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
