"""Mapping test files: input event → expected operations, like config unit tests.

A test file (``mappings/tests/*.yaml``)::

    mapping: ../sql.yaml              # relative to this file; or a list, run against each:
                                      # mappings: [../base.yaml, ../sql.yaml, ../rest.yaml]
    cases:
      - name: text message from a MX user
        event:                        # a canonical event; id, source, time get defaults
          type: whatsapp.message.received
          data: {...}
        expect:                       # every operation, in order, with all its fields
          - op: upsert_contact
            fields: {phone_e164: "+525512345678"}
      - name: unknown outcome is dead-lettered
        event: {...}
        expect_error: "not in catalog 'outcome'"   # a part of the error message

Times print as RFC 3339 with ``Z``, decimals as text ("12.50"), lists as lists.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from wa_bridge.errors import MappingOutputInvalid
from wa_bridge.events import CanonicalEvent
from wa_bridge.mapping._yaml import YamlFile, load_yaml_file, render_time
from wa_bridge.mapping.engine import CompiledMapping, load_mapping
from wa_bridge.mapping.issues import MappingErrors, MappingIssue
from wa_bridge.operations import CrmOperation, FieldValue

__all__ = ["CaseResult", "find_test_files", "render_ops", "run_test_file"]

_EVENT_DEFAULTS = {"specversion": "1.0", "source": "test", "time": "2026-06-10T14:00:00Z"}


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One case's outcome; ``detail`` holds the diff or the error when it failed.

    ``mapping`` names the mapping it ran against when the test file lists several.
    """

    where: str
    name: str
    passed: bool
    detail: str = ""
    mapping: str = ""


def _plain_value(value: FieldValue) -> Any:
    if isinstance(value, datetime):
        return render_time(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return [_plain_value(v) for v in value]
    return value


def render_ops(ops: list[CrmOperation], *, with_source: bool = False) -> list[dict[str, Any]]:
    """Operations as plain JSON-able dicts (what test files expect and dry-run prints)."""
    out = []
    for op in ops:
        item: dict[str, Any] = {"op": op.kind}
        if with_source:
            item["source"] = op.source
        item["fields"] = {k: _plain_value(v) for k, v in op.fields.items()}
        out.append(item)
    return out


def find_test_files(path: Path) -> list[Path]:
    """``path`` itself, or the ``tests/*.yaml`` under a mappings directory."""
    if path.is_file():
        return [path]
    if path.name == "tests":
        return sorted(path.glob("*.yaml"))
    return sorted(path.glob("tests/*.yaml"))


def _dump(value: Any) -> list[str]:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True).splitlines()


def _run_case(mapping: CompiledMapping, case: Mapping[str, Any], where: str) -> CaseResult:
    name = str(case.get("name") or where)
    raw = {**_EVENT_DEFAULTS, "id": f"test:{where}", **case["event"]}
    try:
        event = CanonicalEvent.from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        return CaseResult(where, name, False, f"bad event: {exc}")
    try:
        actual: Any = render_ops(mapping.apply(event))
        error = None
    except MappingOutputInvalid as exc:
        actual, error = None, str(exc)
    if "expect_error" in case:
        wanted = str(case["expect_error"])
        if error is not None and wanted in error:
            return CaseResult(where, name, True)
        got = f"error: {error}" if error else "no error; operations:\n" + "\n".join(_dump(actual))
        return CaseResult(where, name, False, f"expected an error containing {wanted!r}\ngot {got}")
    if error is not None:
        return CaseResult(where, name, False, f"unexpected error: {error}")
    expected = [
        {"op": e.get("op"), "fields": e.get("fields") or {}} for e in case.get("expect") or []
    ]
    if expected == actual:
        return CaseResult(where, name, True)
    diff = difflib.unified_diff(_dump(expected), _dump(actual), "expected", "actual", lineterm="")
    return CaseResult(where, name, False, "\n".join(diff))


def _mapping_paths(data: Any) -> list[str] | None:
    """The mapping paths a test file names (``mapping: x`` or ``mappings: [x, y]``)."""
    if not isinstance(data, dict) or ("mapping" in data) == ("mappings" in data):
        return None
    if isinstance(data.get("mapping"), str):
        return [data["mapping"]]
    paths = data.get("mappings")
    if isinstance(paths, list) and paths and all(isinstance(p, str) for p in paths):
        return paths
    return None


def _check_shape(file: YamlFile) -> list[MappingIssue]:
    data = file.data
    if _mapping_paths(data) is None:
        msg = "a test file needs 'mapping: <path>' or 'mappings: [<path>, ...]'"
        return [MappingIssue.at(file.loc([]), "mapping", msg)]
    issues = []
    cases = data.get("cases")
    if not isinstance(cases, list) or not cases:
        return [MappingIssue.at(file.loc(["cases"]), "cases", "expected a list of test cases")]
    for i, case in enumerate(cases):
        if not isinstance(case, dict) or not isinstance(case.get("event"), dict):
            issues.append(MappingIssue.at(file.loc(["cases", i]), f"cases/{i}", "needs 'event'"))
        elif ("expect" in case) == ("expect_error" in case):
            msg = "needs exactly one of 'expect' or 'expect_error'"
            issues.append(MappingIssue.at(file.loc(["cases", i]), f"cases/{i}", msg))
    return issues


def run_test_file(path: Path) -> list[CaseResult]:
    """Run every case of one test file; raise MappingErrors if it or its mapping is bad."""
    file = load_yaml_file(path, str(path))
    issues = _check_shape(file)
    if issues:
        raise MappingErrors(issues)
    names = _mapping_paths(file.data) or []
    mappings = [load_mapping(os.path.normpath(path.parent / n), allow_base=True) for n in names]
    results = []
    for mapping in mappings:
        for i, case in enumerate(file.data["cases"]):
            where = str(file.loc(["cases", i]).short)
            result = _run_case(mapping, case, where)
            results.append(replace(result, mapping=mapping.path) if len(names) > 1 else result)
    return results
