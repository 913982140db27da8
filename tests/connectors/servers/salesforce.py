"""Salesforce REST API (sObject Collections upsert), as /work/shared/fixtures/CRM.md says.

``PATCH /services/data/vXX.X/composite/sobjects/{SObject}/{ExternalIdField}`` with
``{"allOrNone": bool, "records": [...]}``: ≤ 200 records, each with
``attributes.type == SObject`` and the external id, never ``Id``. Answers 200 with one
``{id, success, errors, created}`` per record in request order, even when records failed
(a Contact created without ``LastName``). Errors are a JSON array
``[{"message", "errorCode", "fields"}]``; the rate limit is 403 ``REQUEST_LIMIT_EXCEEDED``.

``GET /services/data/vXX.X/query?q=SELECT Id, <ExtId> FROM <SObject> WHERE <ExtId> IN
('…', …)`` (the only SOQL shape accepted; the URL must stay ≤ 16,384 bytes): 200 with
``{"totalSize", "done": true, "records": [{"attributes", "Id", <ExtId>}]}``.
"""

from __future__ import annotations

import itertools
import re
from typing import Any
from urllib.parse import urlencode

from jsonschema import Draft202012Validator

from connectors.servers.base import ContractServer, Fault, RecordedRequest, Reply

_ROUTE = re.compile(r"^/services/data/v\d+\.\d/composite/sobjects/(Contact|Case|Task)/(\w+)$")
EXTERNAL_IDS = {"Contact": "WA_Contact_Key__c", "Case": "WA_Case_Key__c", "Task": "WA_Note_Key__c"}
STANDARD_FIELDS = {
    "Contact": {"LastName", "FirstName", "Email", "Phone", "MobilePhone"},
    "Case": {"Subject", "Status", "Origin", "Reason", "Priority", "Description", "Contact"},
    "Task": {"Subject", "Status", "Description", "ActivityDate", "Who", "What"},
}
REQUIRED_ON_CREATE = {"Contact": ("LastName",), "Case": (), "Task": ()}
_CUSTOM = re.compile(r"^WA_\w+__c$")
_QUERY_ROUTE = re.compile(r"^/services/data/v\d+\.\d/query/?$")
_LOOKUP = re.compile(r"^SELECT Id, (\w+) FROM (Contact|Case|Task) WHERE (\w+) IN \((.+)\)$")
_LITERALS = re.compile(r"'((?:[^'\\]|\\.)*)'(?:,|$)")
_URL_MAX = 16_384
_SCHEMA = Draft202012Validator(
    {
        "type": "object",
        "required": ["records"],
        "additionalProperties": False,
        "properties": {
            "allOrNone": {"type": "boolean"},
            "records": {
                "type": "array",
                "minItems": 1,
                "maxItems": 200,
                "items": {
                    "type": "object",
                    "required": ["attributes"],
                    "not": {"required": ["Id"]},
                    "properties": {
                        "attributes": {
                            "type": "object",
                            "required": ["type"],
                            "properties": {"type": {"type": "string"}},
                        }
                    },
                    "additionalProperties": {
                        "type": ["string", "number", "boolean", "null", "object"]
                    },
                },
            },
        },
    }
)


class SalesforceServer(ContractServer):
    vendor = "salesforce"

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)

    def check(self, request: RecordedRequest) -> list[str]:
        if request.method == "GET" and _QUERY_ROUTE.match(request.path):
            return self._check_query(request)
        match = _ROUTE.match(request.path)
        if request.method != "PATCH" or match is None:
            return [f"no such operation {request.method} {request.path}"]
        sobject, external_id = match.groups()
        if external_id != EXTERNAL_IDS[sobject]:
            return [f"{external_id} is not an external id field of {sobject}"]
        errors = [
            f"body{''.join(f'/{p}' for p in e.absolute_path)}: {e.message}"
            for e in _SCHEMA.iter_errors(request.body)
        ]
        if errors:
            return errors
        for i, record in enumerate(request.body["records"]):
            if record["attributes"]["type"] != sobject:
                errors.append(f"records/{i}: attributes.type is not {sobject}")
            if not record.get(external_id):
                errors.append(f"records/{i}: no {external_id}")
            for name, value in record.items():
                if name in ("attributes", external_id):
                    continue
                if name not in STANDARD_FIELDS[sobject] and not _CUSTOM.match(name):
                    errors.append(f"records/{i}: no such column {name!r} on {sobject}")
                if isinstance(value, dict) and name not in ("Contact", "Who", "What"):
                    errors.append(f"records/{i}: {name} is not a relationship")
        return errors

    def _check_query(self, request: RecordedRequest) -> list[str]:
        if request.body is not None:
            return ["a query has no body"]
        q = request.query.get("q", "")
        url_size = len(request.path) + len(urlencode({"q": q})) + 1
        if url_size > _URL_MAX:
            return [f"URI of {url_size} bytes is longer than {_URL_MAX}"]
        lookup = _parse_lookup(q)
        if lookup is None:
            return [f"unsupported SOQL: {q[:80]!r}"]
        sobject, field_name, _ = lookup
        if field_name != EXTERNAL_IDS[sobject]:
            return [f"{field_name} is not an external id field of {sobject}"]
        return []

    def error_reply(self, status: int, message: str, *, field: str | None = None) -> Reply:
        code = {
            400: "JSON_PARSER_ERROR",
            401: "INVALID_SESSION_ID",
            403: "REQUEST_LIMIT_EXCEEDED",
            404: "NOT_FOUND",
        }.get(status, "UNKNOWN_EXCEPTION")
        if status == 401:
            message = "Session expired or invalid"
        item: dict[str, Any] = {"message": message, "errorCode": code}
        if field:
            item["fields"] = [field]
        return Reply(status, [item])

    def fault_reply(self, fault: Fault) -> Reply:
        if fault.status == 403 and fault.body is None:
            body = [
                {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
            ]
            return Reply(403, body, dict(fault.headers))
        return super().fault_reply(fault)

    def handle(self, request: RecordedRequest) -> Reply:
        if request.method == "GET":
            lookup = _parse_lookup(request.query["q"])
            assert lookup is not None
            sobject, external_id, keys = lookup
            records = self.collection(sobject)
            rows = [
                {
                    "attributes": {"type": sobject, "url": f"{request.path}/{records[k]['Id']}"},
                    "Id": records[k]["Id"],
                    external_id: k,
                }
                for k in dict.fromkeys(keys)
                if k in records
            ]
            return Reply(200, {"totalSize": len(rows), "done": True, "records": rows})
        match = _ROUTE.match(request.path)
        assert match is not None
        sobject, external_id = match.groups()
        records = self.collection(sobject)
        results = []
        for record in request.body["records"]:
            key = record[external_id]
            fields = {k: v for k, v in record.items() if k != "attributes"}
            stored = records.get(key)
            if stored is None:
                missing = [f for f in REQUIRED_ON_CREATE[sobject] if f not in fields]
                if missing:
                    error = {
                        "statusCode": "REQUIRED_FIELD_MISSING",
                        "message": f"Required fields are missing: [{', '.join(missing)}]",
                        "fields": missing,
                    }
                    results.append({"success": False, "errors": [error]})
                    continue
                stored = records[key] = {"Id": f"{sobject[:3]}{next(self._ids):015d}"}
                created = True
            else:
                created = False
            stored.update(fields)
            results.append({"id": stored["Id"], "success": True, "errors": [], "created": created})
        return Reply(200, results)


def _parse_lookup(q: str) -> tuple[str, str, list[str]] | None:
    """``(sObject, field, keys)`` of ``SELECT Id, F FROM S WHERE F IN ('k', …)``, else None."""
    match = _LOOKUP.match(q)
    if match is None or match.group(1) != match.group(3):
        return None
    inner = match.group(4)
    literals = list(_LITERALS.finditer(inner))
    if not literals or "".join(m.group(0) for m in literals) != inner:
        return None
    keys = [re.sub(r"\\(.)", r"\1", m.group(1)) for m in literals]
    return match.group(2), match.group(1), keys
