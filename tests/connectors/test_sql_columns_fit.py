"""Every text the shipped SQL mapping lets through fits the SQL CRM's column it lands in.

A field whose ``max_length`` is over its VARCHAR's length passes the mapping's checks and
then fails the worker's whole batch on PostgreSQL ("value too long"): crm_contacts.name
(200 < the mapping's 256), crm_cases.ctwa_clid (200 < 512) and source_url (2000 < 2048)
did. A field with no ``max_length`` must be a constant, an enum or a catalog's value.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wa_bridge.connectors.sql import _SPECS
from wa_bridge.mapping.spec import load_spec
from wa_bridge.store.tables import crm_notes

SQL_MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "sql.yaml"
SPEC = load_spec(SQL_MAPPING)


def _landings() -> Iterator[tuple[str, str, str, dict[str, Any], int]]:
    """(event type, op, field, its checks, the length of the column it lands in)."""
    for event_type, rules in SPEC.rules.items():
        for rule in rules:
            spec = _SPECS.get(rule.kind)  # type: ignore[call-overload]
            if spec is None:
                continue
            for field in rule.fields:
                if rule.kind == "add_note" and field.name == "message_id":
                    column = crm_notes.c.note_key  # the note's key
                elif field.name in spec.fields and field.name not in spec.json_fields:
                    column = spec.table.c[field.name]
                else:
                    continue  # into the attributes JSON
                length = getattr(column.type, "length", None)
                if length is not None:
                    yield event_type, rule.kind, field.name, field.data, length


def _fixed_values(data: dict[str, Any]) -> list[str] | None:
    """The values a field can only take (const, enum, catalog, lookup), else None."""
    if "const" in data:
        return [str(data["const"])]
    if data.get("type") == "enum":
        return [str(v) for v in data["values"]]
    catalog = data.get("catalog") or data.get("lookup")
    if catalog is not None:
        found = SPEC.catalogs[catalog]
        return [*found.values.values(), *([found.default] if found.default else [])]
    return None


LANDINGS = list(_landings())


def test_it_reads_the_fields() -> None:
    assert ("whatsapp.message.received", "upsert_contact", "name") in {
        (e, k, f) for e, k, f, _, _ in LANDINGS
    }


@pytest.mark.parametrize(
    ("event_type", "kind", "name", "data", "length"),
    LANDINGS,
    ids=[f"{e}:{k}.{f}" for e, k, f, _, _ in LANDINGS],
)
def test_what_the_mapping_lets_through_fits_the_column(
    event_type: str, kind: str, name: str, data: dict[str, Any], length: int
) -> None:
    if data.get("type") == "phone":
        assert length >= 16  # E.164: "+" and at most 15 digits
        return
    fixed = _fixed_values(data)
    if fixed is not None:
        assert max(len(v) for v in fixed) <= length, fixed
        return
    assert data.get("max_length") is not None, f"{name}: no max_length, column VARCHAR({length})"
    assert data["max_length"] <= length
