"""An org's records and how a write is checked and applied.

Records live in the server's ``records[SObject]``, keyed by the connector's external id
(``WA_Contact_Key__c`` of a Contact…) when the record has one, else by ``Id`` (tests of
the first connector read them so); deleted ones move to ``records["deleted/SObject"]``.
Lookups go by value, so any key works.

:meth:`Records.prepare` checks a write as Salesforce does, field by field: the field
exists and the API user may see it (else ``INVALID_FIELD``), may write it
(``INVALID_FIELD_FOR_INSERT_UPDATE``), the value fits the type (``STRING_TOO_LONG``,
``INVALID_EMAIL_ADDRESS``, ``JSON_PARSER_ERROR``, a restricted picklist), lookups point
at records of the right type (``INVALID_CROSS_REFERENCE_KEY``), relationships by
external id find their record (``INVALID_FIELD`` "Foreign key external ID … not
found"), required fields are there (``REQUIRED_FIELD_MISSING``), unique values are free
(``DUPLICATE_VALUE``). :meth:`Records.apply` then stores it with Salesforce's system
fields (``Id``, ``CreatedDate``, ``LastModifiedDate`` strictly increasing…).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from .._index import ValueIndex
from .schema import ID_PREFIXES, POLYMORPHIC, FieldDef, Org

Record = dict[str, Any]
Error = dict[str, Any]
# The external id the first connector writes per sObject: records are keyed by it.
KEY_FIELDS = {
    "Contact": "WA_Contact_Key__c",
    "Case": "WA_Case_Key__c",
    "Task": "WA_Note_Key__c",
    "Opportunity": "WA_Deal_Key__c",
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TEXT_TYPES = frozenset(
    ("string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox")
) | {"reference", "id"}
_OWNED = {"Account", "Contact", "Case", "Task", "Opportunity"}


def error(code: str, message: str, fields: list[str] | None = None) -> Error:
    return {"statusCode": code, "message": message, "fields": fields or []}


def sf_time(ms: int) -> str:
    when = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"


class Records:
    def __init__(
        self,
        records: dict[str, dict[str, Record]],
        org: Org,
        wall: Callable[[], float],
        api_user: Record,
    ) -> None:
        self._records = records
        self.org = org
        self._wall = wall
        self.api_user = api_user
        self._ids = itertools.count(1)
        self._last_ms = 0
        self.index = ValueIndex(lambda record, name: record.get(name), _normalize)

    # --- reading ----------------------------------------------------------------------
    def live(self, sobject: str) -> dict[str, Record]:
        if sobject == "User":
            return {self.api_user["Id"]: self.api_user, **self._records.get("User", {})}
        return self._records.setdefault(sobject, {})

    def all(self, sobject: str) -> list[Record]:
        return list(self.live(sobject).values())

    def get(self, sobject: str, record_id: str) -> Record | None:
        live = self.live(sobject)
        found = live.get(record_id)
        if found is not None and found.get("Id") == record_id:
            return found
        hits = self.index.lookup(sobject, "Id", record_id, live.values)
        return hits[0] if hits else None

    def sobject_of(self, record_id: str) -> str | None:
        return next((s for s, p in ID_PREFIXES.items() if record_id.startswith(p)), None)

    def by_id(self, record_id: str) -> tuple[str, Record] | None:
        sobject = self.sobject_of(record_id)
        if sobject is None:
            return None
        record = self.get(sobject, record_id)
        return None if record is None else (sobject, record)

    def deleted(self, sobject: str, record_id: str) -> Record | None:
        return self._records.get(f"deleted/{sobject}", {}).get(record_id)

    def by_field(self, sobject: str, name: str, value: Any) -> list[Record]:
        if name.lower() == "id":
            found = self.get(sobject, str(value))
            return [found] if found else []
        definition = self.org.find_field(sobject, name)
        canonical = definition.name if definition else name
        return self.index.lookup(sobject, canonical, value, self.live(sobject).values)

    # --- checking ---------------------------------------------------------------------
    def prepare(
        self, sobject: str, fields: dict[str, Any], record: Record | None
    ) -> tuple[dict[str, Any], list[Error]]:
        """The changes a write makes (canonical names, lookups resolved), or its errors."""
        creating = record is None
        changes: dict[str, Any] = {}
        errors: list[Error] = []
        for name, value in fields.items():
            if name == "attributes":
                continue
            if isinstance(value, dict):
                self._relationship(sobject, name, value, changes, errors)
                continue
            definition = self.org.visible(sobject, name)
            if definition is None:
                errors.append(
                    error("INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}")
                )
                continue
            writable = definition.createable if creating else definition.updateable
            if not writable or not self.org.access(sobject, definition).edit:
                errors.append(
                    error(
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        f"Unable to create/update fields: {definition.name}. Please check the "
                        "security settings of this field and verify that it is read/write for "
                        "your profile or permission set.",
                        [definition.name],
                    )
                )
                continue
            problem = self._value_error(sobject, definition, value)
            if problem is not None:
                errors.append(problem)
                continue
            changes[definition.name] = value
        if not errors:
            errors += self._required(sobject, changes, record)
            errors += self._duplicates(sobject, changes, record)
        return changes, errors

    def _relationship(
        self,
        sobject: str,
        name: str,
        value: dict[str, Any],
        changes: dict[str, Any],
        errors: list[Error],
    ) -> None:
        lookup = self.org.relationship(sobject, name)
        if lookup is None:
            errors.append(
                error("INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}")
            )
            return
        declared = (value.get("attributes") or {}).get("type")
        if name in POLYMORPHIC and declared is None:
            errors.append(
                error(
                    "INVALID_FIELD",
                    f"The polymorphic relationship {name} needs attributes.type",
                    [lookup.name],
                )
            )
            return
        target = declared or lookup.reference_to[0]
        keys = [k for k in value if k != "attributes"]
        if target not in lookup.reference_to or len(keys) != 1:
            errors.append(error("INVALID_FIELD", f"Invalid relationship {name}", [lookup.name]))
            return
        definition = self.org.visible(target, keys[0])
        if definition is None or not (definition.external_id or definition.name == "Id"):
            errors.append(
                error(
                    "INVALID_FIELD",
                    f"{keys[0]} is not an external id field of {target}",
                    [lookup.name],
                )
            )
            return
        found = self.by_field(target, definition.name, value[keys[0]])
        if len(found) != 1:
            errors.append(
                error(
                    "INVALID_FIELD",
                    f"Foreign key external ID: {value[keys[0]]} not found for field "
                    f"{definition.name} in entity {target}"
                    if not found
                    else f"More than one record found for {definition.name} in {target}",
                    [lookup.name],
                )
            )
            return
        changes[lookup.name] = found[0]["Id"]
        changes[name] = value

    def _value_error(self, sobject: str, definition: FieldDef, value: Any) -> Error | None:
        name = definition.name
        if value is None:
            return None
        if isinstance(value, list | dict):
            return error("JSON_PARSER_ERROR", f"Cannot deserialize {name} from an array/object")
        if definition.custom and definition.name not in self.org.custom_fields(sobject):
            return None  # an implicit field of a set-up org takes any scalar
        kind = definition.type
        if kind in _TEXT_TYPES:
            text = str(value)
            if definition.length and len(text) > definition.length:
                return error(
                    "STRING_TOO_LONG",
                    f"{definition.label or name}: data value too large: {text[:20]}... "
                    f"(max length={definition.length})",
                    [name],
                )
            if kind == "email" and text and not _EMAIL.match(text):
                return error(
                    "INVALID_EMAIL_ADDRESS", f"{name}: invalid email address: {text}", [name]
                )
            if kind == "reference" and text:
                return self._reference_error(definition, text)
            if name == "CurrencyIsoCode" and not re.fullmatch(r"[A-Z]{3}", text):
                return error(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"Currency ISO Code: invalid currency code: {text}",
                    [name],
                )
            if definition.restricted and text not in definition.picklist:
                return error(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{definition.label or name}: bad value for restricted picklist field: {text}",
                    [name],
                )
            return None
        return _typed_error(definition, value)

    def _reference_error(self, definition: FieldDef, record_id: str) -> Error | None:
        found = self.by_id(record_id)
        if found is None or found[0] not in definition.reference_to:
            return error(
                "INVALID_CROSS_REFERENCE_KEY",
                f"invalid cross reference id: {record_id}",
                [definition.name],
            )
        return None

    def _required(
        self, sobject: str, changes: dict[str, Any], record: Record | None
    ) -> list[Error]:
        missing = [
            name
            for name in self.org.required_fields(sobject)
            if (record is None and changes.get(name) in (None, ""))
            or (record is not None and name in changes and changes[name] in (None, ""))
        ]
        if not missing:
            return []
        message = f"Required fields are missing: [{', '.join(missing)}]"
        return [error("REQUIRED_FIELD_MISSING", message, missing)]

    def _duplicates(
        self, sobject: str, changes: dict[str, Any], record: Record | None
    ) -> list[Error]:
        out = []
        for name, value in changes.items():
            definition = self.org.find_field(sobject, name)
            if definition is None or not definition.unique or value in (None, ""):
                continue
            for other in self.by_field(sobject, name, value):
                if other is not record:
                    out.append(
                        error(
                            "DUPLICATE_VALUE",
                            f"duplicate value found: {name} duplicates value on record with "
                            f"id: {other['Id']}",
                            [name],
                        )
                    )
        return out

    # --- applying ---------------------------------------------------------------------
    def _stamp(self) -> str:
        ms = max(int(self._wall() * 1000), self._last_ms + 1)
        self._last_ms = ms
        return sf_time(ms)

    def new_id(self, sobject: str) -> str:
        return f"{ID_PREFIXES.get(sobject, 'a00')}{next(self._ids):012d}AAA"

    def apply(self, sobject: str, changes: dict[str, Any], record: Record | None) -> Record:
        """Store a prepared write; returns the record."""
        now = self._stamp()
        user = self.api_user["Id"]
        before = dict(record) if record is not None else {}
        if record is None:
            record = {
                "Id": self.new_id(sobject),
                "CreatedDate": now,
                "CreatedById": user,
                "IsDeleted": False,
            }
            if sobject in _OWNED:
                record["OwnerId"] = user
            record.update(_defaults(sobject, len(self.live(sobject))))
        record.update(changes)
        record.update(LastModifiedDate=now, SystemModstamp=now, LastModifiedById=user)
        _derive(sobject, record, now)
        self.rekey(sobject, record)
        self.index.changed(sobject, record, {k: before.get(k) for k in record})
        return record

    def touch(self, sobject: str, record: Record, changes: dict[str, Any]) -> None:
        """An edit made in Salesforce's UI (no checks): bumps LastModifiedDate."""
        now = self._stamp()
        record.update(changes)
        record.update(LastModifiedDate=now, SystemModstamp=now)
        _derive(sobject, record, now)
        self.rekey(sobject, record)

    def rekey(self, sobject: str, record: Record) -> None:
        live = self.live(sobject)
        for key, value in list(live.items()):
            if value is record:
                del live[key]
        ext = KEY_FIELDS.get(sobject)
        wanted = record.get(ext) if ext else None
        key = str(wanted) if wanted and str(wanted) not in live else record["Id"]
        live[key] = record

    def delete(self, sobject: str, record: Record) -> None:
        live = self.live(sobject)
        for key, value in list(live.items()):
            if value is record:
                del live[key]
        self.index.drop(sobject)
        record["IsDeleted"] = True
        self._records.setdefault(f"deleted/{sobject}", {})[record["Id"]] = record


def _normalize(name: str, value: Any) -> str | None:
    if value is None or value == "" or isinstance(value, dict):
        return None
    text = str(value).lower()
    return text[:15] if name == "Id" else text


def _defaults(sobject: str, count: int) -> dict[str, Any]:
    if sobject == "Case":
        return {"Status": "New", "Priority": "Medium", "CaseNumber": f"{count + 1001:08d}"}
    if sobject == "Task":
        return {"Status": "Not Started", "Priority": "Normal"}
    if sobject == "OpportunityContactRole":
        return {"IsPrimary": False}
    return {}


def _derive(sobject: str, record: Record, now: str) -> None:
    if sobject == "Contact":
        record["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)
    elif sobject == "Case":
        record["IsClosed"] = record.get("Status") == "Closed"
        record["ClosedDate"] = (record.get("ClosedDate") or now) if record["IsClosed"] else None
    elif sobject == "Task":
        record["IsClosed"] = record.get("Status") == "Completed"
    elif sobject == "Opportunity":
        stage = record.get("StageName")
        record["IsClosed"] = stage in ("Closed Won", "Closed Lost")
        record["IsWon"] = stage == "Closed Won"


def _typed_error(definition: FieldDef, value: Any) -> Error | None:
    name, kind = definition.name, definition.type
    bad = error(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {kind} from value {value!r} for {name}",
        [name],
    )
    if kind == "boolean":
        return None if isinstance(value, bool) else bad
    if kind in ("double", "currency", "percent", "int"):
        if isinstance(value, bool):
            return bad
        if isinstance(value, int | float):
            return None
        try:
            float(str(value))
        except ValueError:
            return bad
        return None
    if kind == "date":
        try:
            date.fromisoformat(str(value))
        except ValueError:
            return bad
        return None if re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)) else bad
    if kind == "datetime":
        try:
            datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return bad
    return None
