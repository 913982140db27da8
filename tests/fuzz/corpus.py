"""A seeded corpus of broken webhook bodies, each with what the receiver must answer.

Every case starts from a real sample (tests/samples/meta) and breaks it one way:

=============  =================================================  ======================
kind           what                                               expected
=============  =================================================  ======================
truncated      the body cut short                                 400 malformed_json
invalid_utf8   bytes that are not UTF-8 put somewhere             400 malformed_json
envelope       object/entry/changes/field/value of a wrong type   400 not_a_webhook
wrong_types    a node inside a change's value given another type  200, valid part kept
huge_arrays    a list inside a value made hundreds long           200 (413 past the cap)
deep_nesting   a value nested 1-150 levels deeper                 200, or 400 too_deep
duplicate_keys one object with a key twice (orjson keeps the last) 200, valid part kept
=============  =================================================  ======================

For the 200 kinds the body is ``{"object": ..., "entry": [valid entries..., broken
entries...]}``: the valid entries are the sample untouched, so every event the sample
gives on its own (ids are deterministic) must be among the events published.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from wa_bridge.normalize import normalize_webhook

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "meta"
Json = Any
Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Case:
    kind: str
    body: bytes = field(repr=False)
    status: int  # the status the receiver must answer; 0: 200 or 400 too_deep by depth
    error: str | None = None
    valid_ids: frozenset[str] = frozenset()


def samples() -> list[Json]:
    return [orjson.loads(p.read_bytes()) for p in sorted(SAMPLES.glob("*.json"))]


def event_ids(payload: Json) -> frozenset[str]:
    return frozenset(e.id for e in normalize_webhook(payload, received_at=datetime.now(UTC)))


def depth(value: Json) -> int:
    """Nesting of objects and arrays; the top level is 1, a scalar 0."""
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def _value_paths(node: Json, path: Path_ = ()) -> Iterator[Path_]:
    """Paths of every node strictly inside ``node``."""
    items: list[tuple[str | int, Json]] = []
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    for key, child in items:
        yield (*path, key)
        yield from _value_paths(child, (*path, key))


def _inside_values(payload: Json) -> list[Path_]:
    """Paths strictly inside some ``entry[i].changes[j].value`` of ``payload``."""
    found = []
    for i, entry in enumerate(payload["entry"]):
        for j, change in enumerate(entry["changes"]):
            base: Path_ = ("entry", i, "changes", j, "value")
            found += [base + p for p in _value_paths(change["value"])]
    return found


def _dicts_inside_values(payload: Json) -> list[Path_]:
    found = []
    for i, entry in enumerate(payload["entry"]):
        for j, change in enumerate(entry["changes"]):
            base: Path_ = ("entry", i, "changes", j, "value")
            found.append(base)
            found += [base + p for p in _value_paths(change["value"]) if _is_dict(change, p)]
    return found


def _is_dict(change: Json, path: Path_) -> bool:
    return isinstance(_get(change["value"], path), dict)


def _get(node: Json, path: Path_) -> Json:
    for key in path:
        node = node[key]
    return node


def _set(node: Json, path: Path_, value: Json) -> None:
    _get(node, path[:-1])[path[-1]] = value


def _junk(rng: random.Random, unlike: Json = None) -> Json:
    choices: list[Json] = [
        None,
        True,
        -1,
        2**64 - 1,
        -(2**63),
        1.5e308,
        "",
        "x" * rng.randint(1, 300),
        "\u0000\ud7ff\ufeff",
        [],
        {},
        [1, "two", None],
        {"id": 7, "type": ["text"], "timestamp": {}},
    ]
    candidates = [c for c in choices if type(c) is not type(unlike)]
    return copy.deepcopy(rng.choice(candidates))


def _combined(valid: Json, broken: Json) -> Json:
    """The sample's own entries, then the broken copy's."""
    return {"object": valid["object"], "entry": [*valid["entry"], *broken["entry"]]}


def _accepted(kind: str, valid: Json, broken: Json) -> Case:
    payload = _combined(valid, broken)
    return Case(kind, orjson.dumps(payload), 0, valid_ids=event_ids(valid))


# --- one builder per kind -------------------------------------------------------------


def truncated(rng: random.Random, sample: Json) -> Case:
    body = orjson.dumps(sample)
    return Case("truncated", body[: rng.randrange(1, len(body))], 400, "malformed_json")


_NOT_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xe2\x82", b"\xf8\x88\x80")


def invalid_utf8(rng: random.Random, sample: Json) -> Case:
    body = orjson.dumps(sample)
    at = rng.randrange(0, len(body))
    return Case(
        "invalid_utf8", body[:at] + rng.choice(_NOT_UTF8) + body[at:], 400, "malformed_json"
    )


def envelope(rng: random.Random, sample: Json) -> Case:
    payload = copy.deepcopy(sample)
    i = rng.randrange(len(payload["entry"]))
    j = rng.randrange(len(payload["entry"][i]["changes"]))
    target: Path_ = rng.choice(
        [
            ("object",),
            ("entry",),
            ("entry", i),
            ("entry", i, "changes"),
            ("entry", i, "changes", j),
            ("entry", i, "changes", j, "field"),
            ("entry", i, "changes", j, "value"),
        ]
    )
    if target == ("object",):
        replacement: Json = rng.choice(["page", "", 1, None, ["whatsapp_business_account"]])
    else:
        # never the same type: any string is a valid (perhaps unknown) field, say
        replacement = _junk(rng, unlike=_get(payload, target))
    _set(payload, target, replacement)
    return Case("envelope", orjson.dumps(payload), 400, "not_a_webhook")


def wrong_types(rng: random.Random, sample: Json) -> Case:
    broken = copy.deepcopy(sample)
    for _ in range(rng.randint(1, 3)):
        paths = _inside_values(broken)
        if not paths:
            break
        path = rng.choice(paths)
        _set(broken, path, _junk(rng, unlike=_get(broken, path)))
    return _accepted("wrong_types", sample, broken)


def huge_arrays(rng: random.Random, sample: Json) -> Case:
    broken = copy.deepcopy(sample)
    path = rng.choice(_dicts_inside_values(broken))
    target = _get(broken, path)
    lists = [k for k, v in target.items() if isinstance(v, list) and v]
    n = rng.choice([100, 300, 1000, 3000])
    if lists and rng.random() < 0.5:
        key = rng.choice(lists)
        element = target[key][0]
        target[key] = [copy.deepcopy(element) for _ in range(min(n, 200))]
    else:
        target[rng.choice([*target.keys(), "extra"])] = [
            _junk(rng) if rng.random() < 0.2 else rng.randint(0, 9) for _ in range(n)
        ]
    return _accepted("huge_arrays", sample, broken)


def deep_nesting(rng: random.Random, sample: Json) -> Case:
    broken = copy.deepcopy(sample)
    path = rng.choice(_dicts_inside_values(broken))
    nested: Json = "bottom"
    for level in range(rng.choice([1, 5, 20, 40, 50, 55, 60, 70, 100, 150])):
        nested = [nested] if level % 2 else {"k": nested}
    _get(broken, path)[rng.choice(["deep", *_get(broken, path).keys()])] = nested
    return _accepted("deep_nesting", sample, broken)


def duplicate_keys(rng: random.Random, sample: Json) -> Case:
    broken = copy.deepcopy(sample)
    chosen = rng.choice(_dicts_inside_values(broken))
    target = _get(broken, chosen)
    key = rng.choice([*target.keys(), "id"]) if target else "id"
    junk = _junk(rng)
    junk_last = rng.random() < 0.5
    payload = _combined(sample, broken)
    offset = len(sample["entry"])
    where = ("entry", chosen[1] + offset, *chosen[2:])  # type: ignore[operator]
    body = _dumps_with_duplicate(payload, where, key, junk, junk_last=junk_last)
    return Case("duplicate_keys", body, 0, valid_ids=event_ids(sample))


def _dumps_with_duplicate(
    node: Json, where: Path_, key: str, junk: Json, *, junk_last: bool, at: Path_ = ()
) -> bytes:
    """JSON text of ``node`` where the object at ``where`` has ``key`` twice."""
    if isinstance(node, dict):
        parts = [
            json.dumps(k).encode()
            + b":"
            + _dumps_with_duplicate(v, where, key, junk, junk_last=junk_last, at=(*at, k))
            for k, v in node.items()
        ]
        if at == where:
            extra = json.dumps(key).encode() + b":" + orjson.dumps(junk)
            parts = [*parts, extra] if junk_last else [extra, *parts]
        return b"{" + b",".join(parts) + b"}"
    if isinstance(node, list):
        items = [
            _dumps_with_duplicate(v, where, key, junk, junk_last=junk_last, at=(*at, i))
            for i, v in enumerate(node)
        ]
        return b"[" + b",".join(items) + b"]"
    return orjson.dumps(node)


BUILDERS: dict[str, tuple[Callable[[random.Random, Json], Case], int]] = {
    "truncated": (truncated, 1500),
    "invalid_utf8": (invalid_utf8, 1000),
    "envelope": (envelope, 1000),
    "wrong_types": (wrong_types, 2500),
    "huge_arrays": (huge_arrays, 500),
    "deep_nesting": (deep_nesting, 1500),
    "duplicate_keys": (duplicate_keys, 2000),
}


def corpus(seed: int = 20260610) -> list[Case]:
    """10,000 cases, the same ones every run."""
    rng = random.Random(seed)
    bases = samples()
    cases = []
    for build, count in BUILDERS.values():
        cases += [build(rng, rng.choice(bases)) for _ in range(count)]
    return cases
