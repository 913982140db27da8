"""Check a mapping file's structure against ``schemas/mapping.schema.json``.

Each jsonschema error is turned into a :class:`MappingIssue` at the YAML position of the
offending key or value, with a message a developer can act on (unknown keys get a
"did you mean" and the list of keys allowed there).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from wa_bridge.mapping._yaml import YamlFile
from wa_bridge.mapping.issues import MappingIssue
from wa_bridge.resources import data_path

__all__ = ["SCHEMA_PATH", "check_structure", "key_path", "suggest"]

SCHEMA_PATH = data_path("schemas/mapping.schema.json")
_MAX_SHOWN = 60


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def key_path(keys: tuple[str | int, ...] | list[str | int]) -> str:
    """``events/whatsapp.message.received/0/fields/name``: the key path shown to users."""
    return "/".join(str(k) for k in keys)


def suggest(word: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` when a close match exists, else ``""``."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "mapping"


def _allowed_keys(schema: dict[str, Any]) -> list[str]:
    return [*schema.get("properties", {})]


def _unknown_keys(err: ValidationError, file: YamlFile) -> Iterator[MappingIssue]:
    schema = err.schema if isinstance(err.schema, dict) else {}
    allowed = _allowed_keys(schema)
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    instance = err.instance if isinstance(err.instance, dict) else {}
    for key in instance:
        if key in allowed or any(p.search(key) for p in patterns):
            continue
        keys = [*err.absolute_path, key]
        hint = suggest(key, allowed)
        expected = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        if patterns and not allowed:
            expected = "; names use letters, digits and _"
        loc = file.loc(keys, at="key")
        yield MappingIssue.at(loc, key_path(keys), f"unknown key {key!r}{hint}{expected}")


def _message(err: ValidationError) -> str:
    v, inst = err.validator, err.instance
    if v == "enum":
        choices = [str(x) for x in cast(list[Any], err.validator_value)]
        allowed = ", ".join(choices)
        hint = suggest(str(inst), choices)
        return f"expected one of: {allowed}; got {_short(inst)}{hint}"
    if v == "type":
        want = err.validator_value
        want_text = " or ".join(want) if isinstance(want, list) else str(want)
        return f"expected {want_text}, got {_json_type(inst)} {_short(inst)}"
    if v == "const":
        return f"expected {_short(err.validator_value)}, got {_short(inst)}"
    if v == "required":
        return err.message.replace("is a required property", "is required here")
    if v in {"minProperties", "maxProperties"} and isinstance(inst, dict):
        return f"expected exactly one key here, got {len(inst)}: {', '.join(inst)}"
    return err.message if len(err.message) <= 200 else err.message[:199] + "…"


_TYPE_CHECKS: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


def _branch_fits(branch: Any, instance: Any) -> bool:
    if not isinstance(branch, dict):
        return False
    if "const" in branch:
        return bool(branch["const"] == instance)
    kinds = branch.get("type")
    if kinds is None:
        return False
    names = kinds if isinstance(kinds, list) else [kinds]
    return any(isinstance(instance, _TYPE_CHECKS.get(n, ())) for n in names)


def _flatten(err: ValidationError) -> list[ValidationError]:
    # oneOf errors say "not valid under any of the given schemas"; our oneOfs are told apart
    # by type, so the branch whose type fits the value says what is actually wrong.
    if err.validator not in {"oneOf", "anyOf"} or not err.context:
        return [err]
    branches = err.validator_value if isinstance(err.validator_value, list) else []
    fitting = [i for i, b in enumerate(branches) if _branch_fits(b, err.instance)]
    if len(fitting) != 1:
        best = best_match(err.context)
        return [err] if best is None else _flatten(best)
    chosen = [
        e for e in err.context if e.relative_schema_path and e.relative_schema_path[0] == fitting[0]
    ]
    return [leaf for e in chosen for leaf in _flatten(e)] or [err]


def _expected(err: ValidationError) -> str:
    branches = err.validator_value if isinstance(err.validator_value, list) else []
    kinds = []
    for b in branches:
        if isinstance(b, dict) and "const" in b:
            kinds.append(json.dumps(b["const"]))
        elif isinstance(b, dict) and "type" in b:
            t = b["type"]
            kinds.extend(t if isinstance(t, list) else [t])
    return f"expected {' or '.join(kinds)}, got {_json_type(err.instance)} {_short(err.instance)}"


def check_structure(file: YamlFile) -> list[MappingIssue]:
    """Every structural problem of one file, in file order."""
    issues: list[MappingIssue] = []
    for raw in _validator().iter_errors(file.data):
        for err in _flatten(raw):
            if err.validator == "additionalProperties":
                issues.extend(_unknown_keys(err, file))
                continue
            keys = list(err.absolute_path)
            text = _expected(err) if err.validator in {"oneOf", "anyOf"} else _message(err)
            issues.append(MappingIssue.at(file.loc(keys), key_path(keys), text))
    return issues
