"""Lookups by value that stay fast when a stand-in holds many records (benchmarks).

While a request is handled (:meth:`ValueIndex.active`), the first lookup of a field
builds a value → records map; the store reports its own writes (:meth:`changed`,
:meth:`drop`) so later lookups of that request reuse it. Outside a request every lookup
scans, so tests may change records directly between requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

Record = dict[str, Any]
Normalize = Callable[[str, Any], str | None]  # (field name, raw value) → key, None: no value
ValueOf = Callable[[Record, str], Any]  # (record, field name) → raw value


class ValueIndex:
    def __init__(self, value_of: ValueOf, normalize: Normalize) -> None:
        self._value_of = value_of
        self._normalize = normalize
        self._maps: dict[tuple[str, str], dict[str, list[Record]]] | None = None

    @contextmanager
    def active(self) -> Iterator[None]:
        self._maps = {}
        try:
            yield
        finally:
            self._maps = None

    def _key(self, record: Record, name: str) -> str | None:
        return self._normalize(name, self._value_of(record, name))

    def lookup(
        self, kind: str, name: str, wanted: Any, records: Callable[[], Iterable[Record]]
    ) -> list[Record]:
        """The records of ``kind`` whose ``name`` equals ``wanted`` (normalized)."""
        key = self._normalize(name, wanted)
        if key is None:
            return []
        if self._maps is None:
            return [r for r in records() if self._key(r, name) == key]
        found = self._maps.get((kind, name))
        if found is None:
            found = self._maps[(kind, name)] = {}
            for record in records():
                value = self._key(record, name)
                if value is not None:
                    found.setdefault(value, []).append(record)
        return list(found.get(key, ()))

    def changed(self, kind: str, record: Record, before: dict[str, Any]) -> None:
        """``record`` was created or written; ``before``: the old raw values of the fields
        it changed (None for a new record)."""
        if self._maps is None:
            return
        for (map_kind, name), found in self._maps.items():
            if map_kind != kind or name not in before:
                continue
            old, new = self._normalize(name, before[name]), self._key(record, name)
            if old == new:
                continue
            if old is not None and record in found.get(old, []):
                found[old] = [r for r in found[old] if r is not record]
            if new is not None:
                found.setdefault(new, []).append(record)

    def drop(self, kind: str) -> None:
        """Forget every map of ``kind`` (a record left or moved)."""
        if self._maps is not None:
            for key in [k for k in self._maps if k[0] == kind]:
                del self._maps[key]
