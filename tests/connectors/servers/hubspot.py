"""HubSpot CRM, as /work/shared/fixtures/CRM.md describes its contract.

Routes (both path styles: ``/crm/v3/objects/`` and ``/crm/objects/2026-03/``; object type
ids ``0-1`` etc. accepted in place of names):

- ``POST …/{type}/batch/upsert``: ≤ 100 inputs, each ``{id, idProperty, properties}`` with
  string property values and a unique ``idProperty``; 200, or 207 with per-item errors
  (a ticket created without ``subject``/``hs_pipeline_stage``).
- ``POST …/{type}/batch/read`` with ``idProperty``: 200, or 207 listing the ids not found.
- ``POST /crm/v4/associations/{from}/{to}/batch/associate/default`` (and
  ``/crm/associations/2026-03/…``): 200.
- Properties (``/crm/v3/properties/{type}`` or ``/crm/properties/2026-03/{type}``):
  ``GET …/{name}`` (200 or 404), ``POST`` a ``PropertyCreate`` (name, label, type,
  fieldType, groupName required; the group must exist; 409 if the name is taken);
  ``GET …/groups/{name}`` and ``POST …/groups`` ``{name, label}``. HubSpot's own
  properties and default groups are always there; created ones live in the records.
  With ``strict_properties`` on, an upsert naming a ``wa_*`` property that was not
  created, or an ``idProperty`` not created with ``hasUniqueValue``, is refused (400),
  as a new portal does.

Errors use HubSpot's body: ``{"status":"error","message","correlationId","category",
"errors":[{"message","in"}]}``; 429 adds ``errorType``/``policyName`` and the
``X-HubSpot-RateLimit-*`` headers.
"""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Any

from jsonschema import Draft202012Validator

from connectors.servers.base import ContractServer, Fault, RecordedRequest, Reply

OBJECT_TYPES = {
    "contacts": "contacts",
    "0-1": "contacts",
    "tickets": "tickets",
    "0-5": "tickets",
    "communications": "communications",
    "0-18": "communications",
    "notes": "notes",
    "0-46": "notes",
}
# Properties with hasUniqueValue (usable as idProperty), per object type.
UNIQUE_PROPERTIES = {
    "contacts": {"email", "wa_contact_key"},
    "tickets": {"wa_case_key"},
    "communications": {"wa_note_key"},
    "notes": {"wa_note_key"},
}
STANDARD_PROPERTIES = {
    "contacts": {"email", "phone", "firstname", "lastname", "country", "hs_whatsapp_phone_number"},
    "tickets": {"subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority"},
    "communications": {
        "hs_communication_channel_type",
        "hs_communication_logged_from",
        "hs_communication_body",
        "hs_timestamp",
    },
    "notes": {"hs_note_body", "hs_timestamp"},
}
REQUIRED_ON_CREATE = {
    "tickets": ("subject", "hs_pipeline_stage"),
    "notes": ("hs_timestamp",),
}
_PREFIX = r"/crm/(?:v3/objects|objects/2026-03)"
_BATCH = re.compile(_PREFIX + r"/([^/]+)/batch/(upsert|read)$")
_PROPS = re.compile(
    r"/crm/(?:v3/properties|properties/2026-03)/([^/]+)(?:/(groups))?(?:/([^/]+))?$"
)
DEFAULT_GROUPS = {
    "contacts": "contactinformation",
    "tickets": "ticketinformation",
    "communications": "communicationinformation",
    "notes": "engagement",
}
_PROPERTY_TYPES = {
    "string": {"text", "textarea", "html", "phonenumber", "file"},
    "number": {"number"},
    "bool": {"booleancheckbox", "radio", "select"},
    "enumeration": {"checkbox", "radio", "select", "booleancheckbox"},
    "date": {"date"},
    "datetime": {"date"},
    "phone_number": {"phonenumber"},
}
_PROPERTY_SCHEMA = Draft202012Validator(
    {
        "type": "object",
        "required": ["name", "label", "type", "fieldType", "groupName"],
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "maxLength": 100},
            "label": {"type": "string", "minLength": 1},
            "type": {"enum": sorted(_PROPERTY_TYPES)},
            "fieldType": {"type": "string"},
            "groupName": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "hasUniqueValue": {"type": "boolean"},
            "options": {"type": "array"},
            "displayOrder": {"type": "integer"},
            "formField": {"type": "boolean"},
            "hidden": {"type": "boolean"},
        },
        "additionalProperties": False,
    }
)
_GROUP_SCHEMA = Draft202012Validator(
    {
        "type": "object",
        "required": ["name", "label"],
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
            "label": {"type": "string", "minLength": 1},
            "displayOrder": {"type": "integer"},
        },
        "additionalProperties": False,
    }
)
_ASSOC = re.compile(
    r"/crm/(?:v4/associations|associations/2026-03)/([^/]+)/([^/]+)/batch/associate/default$"
)

_UPSERT_SCHEMA = Draft202012Validator(
    {
        "type": "object",
        "required": ["inputs"],
        "additionalProperties": False,
        "properties": {
            "inputs": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "required": ["id", "idProperty", "properties"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"type": "string", "minLength": 1},
                        "idProperty": {"type": "string", "minLength": 1},
                        "objectWriteTraceId": {"type": "string"},
                        "properties": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                    },
                },
            }
        },
    }
)
_READ_SCHEMA = Draft202012Validator(
    {
        "type": "object",
        "required": ["inputs", "properties"],
        "additionalProperties": False,
        "properties": {
            "idProperty": {"type": "string"},
            "properties": {"type": "array", "items": {"type": "string"}},
            "propertiesWithHistory": {"type": "array", "items": {"type": "string"}},
            "archived": {"type": "boolean"},
            "inputs": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "required": ["id"],
                    "additionalProperties": False,
                    "properties": {"id": {"type": "string", "minLength": 1}},
                },
            },
        },
    }
)
_ASSOC_SCHEMA = Draft202012Validator(
    {
        "type": "object",
        "required": ["inputs"],
        "additionalProperties": False,
        "properties": {
            "inputs": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "required": ["from", "to"],
                    "additionalProperties": False,
                    "properties": {
                        "from": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {"id": {"type": "string"}},
                        },
                        "to": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {"id": {"type": "string"}},
                        },
                    },
                },
            }
        },
    }
)


def _schema_errors(validator: Draft202012Validator, body: Any) -> list[str]:
    return [
        f"body{''.join(f'/{p}' for p in err.absolute_path)}: {err.message}"
        for err in validator.iter_errors(body)
    ]


def hubspot_error(
    message: str, category: str, *, errors: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    if errors:
        body["errors"] = errors
    return body


class HubSpotServer(ContractServer):
    vendor = "hubspot"

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1001)
        self.strict_properties = False

    def reset(self) -> None:
        super().reset()
        self.strict_properties = False

    # --- property registry ------------------------------------------------------------
    def add_property(self, object_type: str, name: str, *, unique: bool = False) -> None:
        """Define a custom property as a portal admin would (for test set-up)."""
        self.collection(f"properties/{object_type}")[name] = {
            "name": name,
            "label": name,
            "type": "string",
            "fieldType": "text",
            "groupName": DEFAULT_GROUPS[object_type],
            "hasUniqueValue": unique,
        }

    def property(self, object_type: str, name: str) -> dict[str, Any] | None:
        """The property ``name`` of ``object_type`` as HubSpot describes it, or None."""
        created = self.collection(f"properties/{object_type}").get(name)
        if created is not None:
            return created
        if name in STANDARD_PROPERTIES[object_type] or (
            object_type == "contacts" and name == "email"
        ):
            return {
                "name": name,
                "label": name,
                "type": "string",
                "fieldType": "text",
                "groupName": DEFAULT_GROUPS[object_type],
                "hasUniqueValue": name == "email",
                "hubspotDefined": True,
            }
        return None

    def _group_exists(self, object_type: str, name: str) -> bool:
        return name == DEFAULT_GROUPS[object_type] or name in self.collection(
            f"groups/{object_type}"
        )

    # --- contract ---------------------------------------------------------------------
    def check(self, request: RecordedRequest) -> list[str]:
        match = _PROPS.match(request.path)
        if match:
            return self._check_properties(request, match)
        if request.method != "POST":
            return [f"no such operation {request.method} {request.path}"]
        match = _BATCH.match(request.path)
        if match:
            object_type = OBJECT_TYPES.get(match.group(1))
            if object_type is None:
                return [f"unknown object type {match.group(1)!r}"]
            if match.group(2) == "read":
                return self._check_read(object_type, request.body)
            return self._check_upsert(object_type, request.body)
        match = _ASSOC.match(request.path)
        if match:
            return self._check_assoc(match.group(1), match.group(2), request.body)
        return [f"no such operation {request.method} {request.path}"]

    def _check_properties(self, request: RecordedRequest, match: re.Match[str]) -> list[str]:
        object_type = OBJECT_TYPES.get(match.group(1))
        if object_type is None:
            return [f"unknown object type {match.group(1)!r}"]
        is_group, name = bool(match.group(2)), match.group(3)
        if request.method == "GET" and name is not None:
            return []
        if request.method != "POST" or name is not None:
            return [f"no such operation {request.method} {request.path}"]
        if is_group:
            return _schema_errors(_GROUP_SCHEMA, request.body)
        errors = _schema_errors(_PROPERTY_SCHEMA, request.body)
        if errors:
            return errors
        body = request.body
        if body["fieldType"] not in _PROPERTY_TYPES[body["type"]]:
            errors.append(f"fieldType {body['fieldType']!r} does not fit type {body['type']!r}")
        if body.get("hasUniqueValue") and body["type"] != "string":
            errors.append("hasUniqueValue needs type 'string'")
        return errors

    def _check_upsert(self, object_type: str, body: Any) -> list[str]:
        errors = _schema_errors(_UPSERT_SCHEMA, body)
        if errors:
            return errors
        ids: set[tuple[str, str]] = set()
        for i, item in enumerate(body["inputs"]):
            strict = self.strict_properties  # then unknown properties are a 400 from handle
            if not strict and item["idProperty"] not in UNIQUE_PROPERTIES[object_type]:
                errors.append(f"inputs/{i}: idProperty {item['idProperty']!r} is not unique")
            key = (item["idProperty"], item["id"])
            if key in ids:
                errors.append(f"inputs/{i}: duplicate id in one batch")
            ids.add(key)
            for name in [] if strict else item["properties"]:
                if name not in STANDARD_PROPERTIES[object_type] and not name.startswith("wa_"):
                    errors.append(f"inputs/{i}: property {name!r} does not exist")
        return errors

    def _check_read(self, object_type: str, body: Any) -> list[str]:
        errors = _schema_errors(_READ_SCHEMA, body)
        id_property = body.get("idProperty") if isinstance(body, dict) else None
        if not errors and id_property not in UNIQUE_PROPERTIES[object_type]:
            errors.append(f"idProperty {id_property!r} is not unique")
        return errors

    def _check_assoc(self, source: str, target: str, body: Any) -> list[str]:
        errors = _schema_errors(_ASSOC_SCHEMA, body)
        types = (OBJECT_TYPES.get(source), OBJECT_TYPES.get(target))
        if None in types:
            return [*errors, f"unknown association {source} → {target}"]
        if errors:
            return errors
        for i, item in enumerate(body["inputs"]):
            for end, object_type in (("from", types[0]), ("to", types[1])):
                if not any(
                    r["id"] == item[end]["id"] for r in self.collection(str(object_type)).values()
                ):
                    errors.append(f"inputs/{i}/{end}: no {object_type} with id {item[end]['id']}")
        return errors

    def error_reply(self, status: int, message: str, *, field: str | None = None) -> Reply:
        if status == 429:
            return self.rate_limit_reply()
        category = {
            400: "VALIDATION_ERROR",
            401: "INVALID_AUTHENTICATION",
            403: "MISSING_SCOPES",
            404: "OBJECT_NOT_FOUND",
        }.get(status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR")
        errors = [{"message": message, "in": field}] if field else None
        return Reply(status, hubspot_error(message, category, errors=errors))

    def rate_limit_reply(self) -> Reply:
        body = {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": "TEN_SECONDLY_ROLLING",
            "requestId": str(uuid.uuid4()),
        }
        headers = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": "190",
            "X-HubSpot-RateLimit-Remaining": "0",
        }
        return Reply(429, body, headers)

    def fault_reply(self, fault: Fault) -> Reply:
        if fault.status == 400 and fault.body is None:
            body = hubspot_error(
                "Property values were not valid",
                "VALIDATION_ERROR",
                errors=[{"message": "scripted validation error", "in": "phone"}],
            )
            return Reply(400, body, dict(fault.headers))
        return super().fault_reply(fault)

    # --- state ------------------------------------------------------------------------
    def handle(self, request: RecordedRequest) -> Reply:
        match = _PROPS.match(request.path)
        if match:
            return self._properties(request, match)
        match = _BATCH.match(request.path)
        if match:
            object_type = OBJECT_TYPES[match.group(1)]
            if match.group(2) == "read":
                return self._read(object_type, request.body)
            if self.strict_properties:
                refused = self._unknown_properties(object_type, request.body["inputs"])
                if refused is not None:
                    return refused
            return self._upsert(object_type, request.body["inputs"])
        match = _ASSOC.match(request.path)
        assert match is not None
        links = self.records.setdefault("associations", {})
        source, target = OBJECT_TYPES[match.group(1)], OBJECT_TYPES[match.group(2)]
        results = []
        for item in request.body["inputs"]:
            key = f"{source}:{item['from']['id']}->{target}:{item['to']['id']}"
            links[key] = {"from": item["from"]["id"], "to": item["to"]["id"], "type": target}
            results.append({"from": item["from"], "to": item["to"]})
        return Reply(200, {"status": "COMPLETE", "results": results})

    def _properties(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        object_type = OBJECT_TYPES[match.group(1)]
        is_group, name = bool(match.group(2)), match.group(3)
        if request.method == "GET":
            if is_group:
                found = self._group_exists(object_type, name)
                group = {"name": name, "label": name, "displayOrder": -1, "archived": False}
                return Reply(200, group) if found else self._not_found(f"group {name}")
            prop = self.property(object_type, name)
            return Reply(200, prop) if prop else self._not_found(f"property {name}")
        body = request.body
        if is_group:
            if self._group_exists(object_type, body["name"]):
                return self.error_reply(409, f"group {body['name']} already exists")
            self.collection(f"groups/{object_type}")[body["name"]] = dict(body)
            return Reply(201, {**body, "displayOrder": -1, "archived": False})
        if not self._group_exists(object_type, body["groupName"]):
            return self.error_reply(
                400, f"property group {body['groupName']} does not exist", field="groupName"
            )
        if self.property(object_type, body["name"]) is not None:
            return self.error_reply(409, f"property {body['name']} already exists")
        prop = {"hasUniqueValue": False, **body}
        self.collection(f"properties/{object_type}")[body["name"]] = prop
        return Reply(201, prop)

    def _not_found(self, what: str) -> Reply:
        return Reply(404, hubspot_error(f"{what} does not exist", "OBJECT_NOT_FOUND"))

    def _unknown_properties(self, object_type: str, inputs: list[dict[str, Any]]) -> Reply | None:
        """A new portal's 400 for an upsert naming properties nobody created."""
        errors = []
        for item in inputs:
            id_prop = self.property(object_type, item["idProperty"])
            if id_prop is None or not id_prop.get("hasUniqueValue"):
                errors.append(
                    {
                        "message": f"idProperty {item['idProperty']} is not a unique property",
                        "code": "INVALID_ID_PROPERTY",
                    }
                )
            for name in item["properties"]:
                if self.property(object_type, name) is None:
                    errors.append(
                        {
                            "message": f'Property "{name}" does not exist',
                            "code": "PROPERTY_DOESNT_EXIST",
                            "context": {"propertyName": [name]},
                        }
                    )
        if not errors:
            return None
        return Reply(
            400, hubspot_error("Property values were not valid", "VALIDATION_ERROR", errors=errors)
        )

    def _upsert(self, object_type: str, inputs: list[dict[str, Any]]) -> Reply:
        records = self.collection(object_type)
        results, errors = [], []
        for item in inputs:
            key = f"{item['idProperty']}={item['id']}"
            record = records.get(key)
            if record is None:
                missing = [
                    p
                    for p in REQUIRED_ON_CREATE.get(object_type, ())
                    if p not in item["properties"]
                ]
                if missing:
                    message = f"Missing required properties for create: {', '.join(missing)}"
                    error = hubspot_error(
                        message, "VALIDATION_ERROR", errors=[{"message": message, "in": missing[0]}]
                    )
                    errors.append({**error, "context": {"ids": [item["id"]]}, "id": item["id"]})
                    continue
                record = records[key] = {
                    "id": str(next(self._ids)),
                    "properties": {item["idProperty"]: item["id"]},
                }
                new = True
            else:
                new = False
            record["properties"].update(item["properties"])
            results.append(
                {
                    "id": record["id"],
                    "new": new,
                    "properties": dict(record["properties"]),
                    "archived": False,
                }
            )
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            body.update(errors=errors, numErrors=len(errors))
        return Reply(207 if errors else 200, body)

    def _read(self, object_type: str, body: dict[str, Any]) -> Reply:
        records = self.collection(object_type)
        results, errors = [], []
        for item in body["inputs"]:
            record = records.get(f"{body['idProperty']}={item['id']}")
            if record is None:
                error = hubspot_error(f"Could not find object {item['id']}", "OBJECT_NOT_FOUND")
                errors.append({**error, "context": {"ids": [item["id"]]}})
            else:
                results.append({"id": record["id"], "properties": dict(record["properties"])})
        out: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            out.update(errors=errors, numErrors=len(errors))
        return Reply(207 if errors else 200, out)

    def find(self, object_type: str, id_property: str, key: str) -> dict[str, Any] | None:
        """The record stored under ``id_property=key`` (for test assertions)."""
        return self.collection(object_type).get(f"{id_property}={key}")
