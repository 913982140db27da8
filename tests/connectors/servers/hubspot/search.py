"""CRM search (``POST …/{type}/search``) over a portal's live objects.

Filter groups are ORed, the filters of a group ANDed. ``EQ``/``NEQ``/``IN``/``NOT_IN``
compare strings case-insensitively (numbers and dates by value); ``CONTAINS_TOKEN``
matches one word of the value (words split on anything but letters, digits, ``@``,
``.``, ``_``, ``-``... and the whole value counts as a word too), ``*`` standing for any
run of characters; ``HAS_PROPERTY`` means a non-empty value. Paging: ``after`` is an
offset, ``limit`` ≤ 200, and no page reaches past 10,000 results.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

from .schema import PropertyDef
from .values import time_ms

Record = dict[str, Any]
MAX_RESULTS = 10_000
_WORDS = re.compile(r"[^\w@.+-]+")


Key = tuple[int, float, str]  # (0, number, "") for numbers and times, (1, 0, text) else


def _comparable(prop: PropertyDef | None, value: str) -> Key:
    if prop is not None and prop.type == "number":
        try:
            return (0, float(value), "")
        except ValueError:
            pass
    if prop is not None and prop.type in ("datetime", "date"):
        ms = time_ms(value)
        if ms is not None:
            return (0, ms, "")
    return (1, 0.0, value.lower())


def _tokens(value: str) -> set[str]:
    lowered = value.lower()
    return {lowered, *(w for w in _WORDS.split(lowered) if w)}


def _token_match(value: str, pattern: str) -> bool:
    pattern = pattern.lower()
    return any(fnmatch.fnmatchcase(token, pattern) for token in _tokens(value))


def _filter_matches(
    record: Record, flt: dict[str, Any], definition: Callable[[str], PropertyDef | None]
) -> bool:
    name, op = flt["propertyName"], flt["operator"]
    prop = definition(name)
    raw = record.get("properties", {}).get(name)
    have = None if raw in (None, "") else str(raw)
    if op == "HAS_PROPERTY":
        return have is not None
    if op == "NOT_HAS_PROPERTY":
        return have is None
    if op in ("NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN") and have is None:
        return True
    if have is None:
        return False
    mine = _comparable(prop, have)
    if op in ("IN", "NOT_IN"):
        inside = any(mine == _comparable(prop, str(v)) for v in flt["values"])
        return inside if op == "IN" else not inside
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        found = _token_match(have, str(flt["value"]))
        return found if op == "CONTAINS_TOKEN" else not found
    other = _comparable(prop, str(flt["value"]))
    if op == "EQ":
        return mine == other
    if op == "NEQ":
        return mine != other
    if op == "BETWEEN":
        return other <= mine <= _comparable(prop, str(flt["highValue"]))
    return {"LT": mine < other, "LTE": mine <= other, "GT": mine > other, "GTE": mine >= other}[op]


def _query_matches(record: Record, query: str, searchable: tuple[str, ...]) -> bool:
    words = [w for w in query.lower().split() if w]
    props = record.get("properties", {})
    text = " ".join(str(props.get(n) or "") for n in searchable).lower()
    return all(w in text for w in words)


def search(
    records: list[Record],
    body: dict[str, Any],
    definition: Callable[[str], PropertyDef | None],
    *,
    searchable: tuple[str, ...],
) -> tuple[list[Record], int, int | None]:
    """``(page, total, next_after)`` for a valid search ``body``."""
    groups = body.get("filterGroups") or []
    matched = [
        r
        for r in records
        if (
            not groups
            or any(all(_filter_matches(r, f, definition) for f in g["filters"]) for g in groups)
        )
        and (not body.get("query") or _query_matches(r, body["query"], searchable))
    ]
    matched.sort(key=lambda r: int(r["id"]) if str(r["id"]).isdigit() else 0)
    for sort in body.get("sorts") or []:
        name = sort if isinstance(sort, str) else sort["propertyName"]
        descending = isinstance(sort, dict) and sort.get("direction") == "DESCENDING"
        if isinstance(sort, str) and sort.startswith("-"):
            name, descending = sort[1:], True
        prop = definition(name)

        def key(r: Record, name: str = name, prop: PropertyDef | None = prop) -> Key:
            return _comparable(prop, str(r.get("properties", {}).get(name)))

        def has(r: Record, name: str = name) -> bool:
            return r.get("properties", {}).get(name) not in (None, "")

        present = [r for r in matched if has(r)]
        absent = [r for r in matched if not has(r)]
        present.sort(key=key, reverse=descending)
        matched = present + absent
    start = int(body.get("after") or 0)
    limit = int(body.get("limit") or 10)
    page = matched[start : start + limit]
    end = start + len(page)
    next_after = end if end < len(matched) and end < MAX_RESULTS else None
    return page, len(matched), next_after
