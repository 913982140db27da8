"""A HubSpot portal's records: objects, their timestamps, merges, archives, associations.

Everything lives in the server's ``records`` (so ``reset()`` forgets it):

- ``records[type]``: live objects ``{"id", "properties", "createdAt", "updatedAt",
  "archived"}`` keyed by id (tests may insert under any key: lookups go by value);
- ``records["archived/<type>"]``: deleted objects; ``records["merged/<type>"]``: merged
  away objects with ``mergedInto``;
- ``records["associations"]``: one entry per linked pair ``{"from", "to", "type"
  (the to-type), "fromType", "toType", "typeIds"}``; HubSpot shows it from both ends.

Every write sets ``lastmodifieddate``/``hs_lastmodifieddate`` (strictly increasing, so
"most recently modified" always has one answer), ``createdate`` on create, and for
contacts the calculated ``hs_searchable_calculated_*`` numbers.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from .._index import ValueIndex
from .schema import ASSOCIATION_TYPES
from .values import national_digits

Record = dict[str, Any]
CALCULATED = {
    "phone": "hs_searchable_calculated_phone_number",
    "mobilephone": "hs_searchable_calculated_mobile_number",
}


TIMESTAMPS = ("lastmodifieddate", "hs_lastmodifieddate")


def _value_of(record: Record, name: str) -> Any:
    return record.get("id") if name == "@id" else record.get("properties", {}).get(name)


def _normalize(name: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value).lower() if name == "email" else str(value)


def iso(ms: int) -> str:
    when = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class Objects:
    def __init__(self, records: dict[str, dict[str, Record]], wall: Callable[[], float]) -> None:
        self._records = records
        self._wall = wall
        self._ids = itertools.count(1001)
        self._last_ms = 0
        self.index = ValueIndex(_value_of, _normalize)

    # --- reading ----------------------------------------------------------------------
    def live(self, object_type: str) -> dict[str, Record]:
        return self._records.setdefault(object_type, {})

    def all(self, object_type: str) -> list[Record]:
        return list(self.live(object_type).values())

    def canonical_id(self, object_type: str, object_id: str) -> str:
        merged = self._records.get(f"merged/{object_type}", {})
        seen = set()
        while object_id in merged and object_id not in seen:
            seen.add(object_id)
            object_id = merged[object_id]["mergedInto"]
        return object_id

    def get(self, object_type: str, object_id: str) -> Record | None:
        """The live object ``object_id`` (a merged-away id answers its primary)."""
        object_id = self.canonical_id(object_type, str(object_id))
        records = self.live(object_type)
        found = records.get(object_id)
        if found is not None and str(found.get("id")) == object_id:
            return found
        hits = self.index.lookup(object_type, "@id", object_id, records.values)
        return hits[0] if hits else None

    def archived(self, object_type: str, object_id: str) -> Record | None:
        return self._records.get(f"archived/{object_type}", {}).get(str(object_id))

    def by_property(self, object_type: str, name: str, value: str) -> list[Record]:
        if name == "hs_object_id":
            found = self.get(object_type, value)
            return [found] if found else []
        return self.index.lookup(object_type, name, value, self.live(object_type).values)

    # --- writing ----------------------------------------------------------------------
    def _stamp(self) -> int:
        ms = max(int(self._wall() * 1000), self._last_ms + 1)
        self._last_ms = ms
        return ms

    def new_id(self) -> str:
        return str(next(self._ids))

    def create(self, object_type: str, properties: dict[str, str]) -> Record:
        object_id = self.new_id()
        ms = self._stamp()
        record: Record = {
            "id": object_id,
            "properties": {"hs_object_id": object_id, "createdate": iso(ms)},
            "createdAt": iso(ms),
            "updatedAt": iso(ms),
            "archived": False,
        }
        self.live(object_type)[object_id] = record
        self.index.changed(object_type, record, {"@id": None, "hs_object_id": None})
        self.write(object_type, record, properties, stamp=ms)
        return record

    def write(
        self,
        object_type: str,
        record: Record,
        properties: dict[str, str],
        *,
        stamp: int | None = None,
    ) -> None:
        """Set ``properties`` (as given: HubSpot stores strings) and bump the timestamps."""
        props = record.setdefault("properties", {})
        names = {*properties, *TIMESTAMPS, *(CALCULATED[k] for k in properties if k in CALCULATED)}
        before = {name: props.get(name) for name in names}
        props.update(properties)
        if object_type == "contacts":
            for source, target in CALCULATED.items():
                if source in properties:
                    props[target] = national_digits(properties[source])
        ms = self._stamp() if stamp is None else stamp
        props["lastmodifieddate"] = props["hs_lastmodifieddate"] = iso(ms)
        record["updatedAt"] = iso(ms)
        record.setdefault("createdAt", iso(ms))
        record.setdefault("archived", False)
        self.index.changed(object_type, record, before)

    def archive(self, object_type: str, object_id: str) -> Record | None:
        record = self.get(object_type, object_id)
        if record is None:
            return None
        live = self.live(object_type)
        key = next(k for k, r in live.items() if r is record)
        del live[key]
        self.index.drop(object_type)
        record["archived"] = True
        record["archivedAt"] = iso(self._stamp())
        self._records.setdefault(f"archived/{object_type}", {})[str(record["id"])] = record
        self.unlink_all(object_type, str(record["id"]))
        return record

    def merge(self, object_type: str, primary: Record, other: Record) -> Record:
        """Merge ``other`` into ``primary``: the primary's values win, its empty ones are
        filled from the other; associations move; the other id then answers the primary."""
        props = primary.setdefault("properties", {})
        filled = {
            k: v
            for k, v in other.get("properties", {}).items()
            if v not in ("", None) and not props.get(k) and k not in ("hs_object_id",)
        }
        ids = [i for i in props.get("hs_merged_object_ids", "").split(";") if i]
        ids.append(str(other["id"]))
        filled["hs_merged_object_ids"] = ";".join(ids)
        live = self.live(object_type)
        key = next(k for k, r in live.items() if r is other)
        del live[key]
        self.index.drop(object_type)
        other["mergedInto"] = str(primary["id"])
        self._records.setdefault(f"merged/{object_type}", {})[str(other["id"])] = other
        self.move_links(object_type, str(other["id"]), str(primary["id"]))
        self.write(object_type, primary, filled)
        return primary

    # --- associations -----------------------------------------------------------------
    @property
    def _links(self) -> dict[str, Record]:
        return self._records.setdefault("associations", {})

    def link(
        self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int | None = None
    ) -> None:
        forward = f"{from_type}:{from_id}->{to_type}:{to_id}"
        backward = f"{to_type}:{to_id}->{from_type}:{from_id}"
        if forward in self._links:
            entry = self._links[forward]
            wanted = type_id or ASSOCIATION_TYPES[(from_type, to_type)]
        elif backward in self._links:
            entry = self._links[backward]
            wanted = ASSOCIATION_TYPES[(to_type, from_type)]
        else:
            entry = self._links[forward] = {
                "from": from_id,
                "to": to_id,
                "type": to_type,
                "fromType": from_type,
                "toType": to_type,
                "typeIds": [],
            }
            wanted = type_id or ASSOCIATION_TYPES[(from_type, to_type)]
        if wanted not in entry["typeIds"]:
            entry["typeIds"].append(wanted)

    def _ends(self) -> Iterator[tuple[str, Record]]:
        yield from self._links.items()

    def linked(self, object_type: str, object_id: str, to_type: str) -> list[tuple[str, list[int]]]:
        """``(to id, type ids seen from this end)`` of ``object_type:object_id``'s links."""
        out = []
        for entry in self._links.values():
            if (entry["fromType"], entry["from"], entry["toType"]) == (
                object_type,
                object_id,
                to_type,
            ):
                out.append((entry["to"], list(entry["typeIds"])))
            elif (entry["toType"], entry["to"], entry["fromType"]) == (
                object_type,
                object_id,
                to_type,
            ):
                out.append((entry["from"], [ASSOCIATION_TYPES[(object_type, to_type)]]))
        return out

    def move_links(self, object_type: str, old_id: str, new_id: str) -> None:
        for key, entry in list(self._links.items()):
            ends = [
                (entry["fromType"], entry["from"]),
                (entry["toType"], entry["to"]),
            ]
            if (object_type, old_id) not in ends:
                continue
            del self._links[key]
            a = (entry["fromType"], new_id if ends[0] == (object_type, old_id) else entry["from"])
            b = (entry["toType"], new_id if ends[1] == (object_type, old_id) else entry["to"])
            for type_id in entry["typeIds"]:
                self.link(a[0], a[1], b[0], b[1], type_id)

    def unlink(self, a_type: str, a_id: str, b_type: str, b_id: str) -> None:
        self._links.pop(f"{a_type}:{a_id}->{b_type}:{b_id}", None)
        self._links.pop(f"{b_type}:{b_id}->{a_type}:{a_id}", None)

    def unlink_all(self, object_type: str, object_id: str) -> None:
        for key, entry in list(self._links.items()):
            ends = {(entry["fromType"], entry["from"]), (entry["toType"], entry["to"])}
            if (object_type, object_id) in ends:
                del self._links[key]
