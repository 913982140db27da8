"""The generic REST CRM, checked against our published ``rest-crm.openapi.yaml``.

Request bodies are validated with the contract's own JSON Schemas (OpenAPI 3.1 is JSON
Schema 2020-12), so the contract server and the published contract cannot drift apart.
"""

from __future__ import annotations

import io
import re
import uuid
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from ruamel.yaml import YAML

from wa_bridge.connectors.rest import contract_text

from .base import ContractServer, RecordedRequest, Reply, path_key

CONTRACT_URI = "urn:wa-bridge:rest-crm"
_ROUTE = re.compile(r"^/(contacts|cases|notes|outcomes|consents)/([^/]+)$")
_SCHEMAS = {
    "contacts": "ContactPut",
    "cases": "CasePut",
    "notes": "NotePut",
    "outcomes": "OutcomePut",
    "consents": "ConsentPut",
}
_OPS = {
    "upsert_contact": "contacts",
    "upsert_case": "cases",
    "add_note": "notes",
    "record_outcome": "outcomes",
    "set_consent": "consents",
}


def load_contract() -> dict[str, Any]:
    doc: dict[str, Any] = YAML(typ="safe").load(io.StringIO(contract_text()))
    return doc


def _validators(doc: dict[str, Any]) -> dict[str, Draft202012Validator]:
    registry: Registry[Any] = Registry().with_resource(
        CONTRACT_URI, Resource.from_contents(doc, default_specification=DRAFT202012)
    )
    return {
        name: Draft202012Validator(
            {"$ref": f"{CONTRACT_URI}#/components/schemas/{name}"}, registry=registry
        )
        for name in doc["components"]["schemas"]
    }


class RestCrmServer(ContractServer):
    vendor = "rest"

    def __init__(self) -> None:
        super().__init__()
        self.contract = load_contract()
        self._validators = _validators(self.contract)

    def _schema_errors(self, schema: str, body: Any, where: str = "body") -> list[str]:
        return [
            f"{where}{''.join(f'/{p}' for p in err.absolute_path)}: {err.message}"
            for err in self._validators[schema].iter_errors(body)
        ]

    def check(self, request: RecordedRequest) -> list[str]:
        match = _ROUTE.match(request.path)
        if match and request.method == "PUT":
            return self._schema_errors(_SCHEMAS[match.group(1)], request.body)
        if request.path == "/batch" and request.method == "POST":
            errors = self._schema_errors("BatchRequest", request.body)
            if errors:
                return errors
            for i, item in enumerate(request.body["operations"]):
                schema = _SCHEMAS[_OPS[item["op"]]]
                errors += self._schema_errors(schema, item["body"], f"operations/{i}/body")
            return errors
        return [f"no such operation {request.method} {request.path}"]

    def error_reply(self, status: int, message: str, *, field: str | None = None) -> Reply:
        code = {400: "validation_error", 401: "unauthorized", 429: "rate_limited"}.get(
            status, "error"
        )
        return Reply(status, {"error": {"code": code, "message": message, "field": field}})

    def handle(self, request: RecordedRequest) -> Reply:
        if request.path == "/batch":
            return self._batch(request.body["operations"])
        match = _ROUTE.match(request.path)
        assert match is not None
        status, result = self._put(match.group(1), path_key(match.group(2)), request.body)
        return Reply(status, result)

    def _put(self, collection: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        records = self.collection(collection)
        record = records.get(key)
        created = record is None
        if record is None:
            record = records[key] = {"id": uuid.uuid4().hex, "key": key, "fields": {}}
        record["fields"].update(body["fields"])
        for ref in ("contact_key", "case_key"):
            if ref in body:
                record[ref] = body[ref]
        return (201 if created else 200), {"id": record["id"], "created": created}

    def _batch(self, operations: list[dict[str, Any]]) -> Reply:
        results: list[dict[str, Any]] = []
        failed = False
        for item in operations:
            if failed:
                results.append({"status": 424, "error": {"code": "not_attempted", "message": ""}})
                continue
            rejection = self.item_rejection(item)
            if rejection is not None:
                failed = True
                results.append({"status": 400, "error": rejection})
                continue
            status, result = self._put(_OPS[item["op"]], item["key"], item["body"])
            results.append({"status": status, **result})
        return Reply(207 if failed else 200, {"results": results})

    def item_rejection(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """A hook for tests: the REST CRM's business validation (none by default)."""
        return None
