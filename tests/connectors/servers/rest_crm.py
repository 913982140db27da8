"""The generic REST CRM, checked against our published ``rest-crm.openapi.yaml``.

Request bodies are validated with the contract's own JSON Schemas (OpenAPI 3.1 is JSON
Schema 2020-12), so the contract server and the published contract cannot drift apart.

It offers the optional ``POST /contacts/search`` (``searchable`` off: it answers 404, a
CRM without it), ``adopt`` in a contact PUT and the optional ``POST
/contacts/{key}/merge`` (``mergeable`` off: 404). :meth:`RestCrmServer.seed_contact` adds a
contact the CRM held before wa-bridge (no key: stored under ``crm:<id>``).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from ruamel.yaml import YAML

from wa_bridge.connectors.rest import contract_text

from .base import ContractServer, RecordedRequest, Reply, path_key

CONTRACT_URI = "urn:wa-bridge:rest-crm"
_ROUTE = re.compile(r"^/(contacts|cases|notes|outcomes|consents)/([^/]+)$")
_MERGE = re.compile(r"^/contacts/([^/]+)/merge$")
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


def _digit_forms(stored: str) -> set[str]:
    """The digits a stored phone is found by: as typed, and national if typed with +."""
    digits = "".join(c for c in stored if c.isdigit())
    forms = {digits} if digits else set()
    if stored.strip().startswith("+") and digits:
        with contextlib.suppress(phonenumbers.NumberParseException):
            forms.add(phonenumbers.national_significant_number(phonenumbers.parse("+" + digits)))
    return forms


class RestCrmServer(ContractServer):
    vendor = "rest"

    def __init__(self) -> None:
        super().__init__()
        self.contract = load_contract()
        self._validators = _validators(self.contract)
        self.searchable = True
        self.mergeable = True
        self._ticks = itertools.count()

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.searchable = True
            self.mergeable = True

    def seed_contact(self, **fields: Any) -> str:
        """A contact the CRM held before wa-bridge (no key); returns its id."""
        with self._lock:
            record = {"id": uuid.uuid4().hex, "key": None, "fields": dict(fields)}
            self._touch(record)
            self.collection("contacts")[f"crm:{record['id']}"] = record
            return str(record["id"])

    def _touch(self, record: dict[str, Any]) -> None:
        when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=next(self._ticks))
        record["updated_at"] = when.isoformat()

    def _schema_errors(self, schema: str, body: Any, where: str = "body") -> list[str]:
        return [
            f"{where}{''.join(f'/{p}' for p in err.absolute_path)}: {err.message}"
            for err in self._validators[schema].iter_errors(body)
        ]

    def check(self, request: RecordedRequest) -> list[str]:
        if request.path == "/contacts/search" and request.method == "POST":
            return self._schema_errors("ContactSearch", request.body)
        if _MERGE.match(request.path) and request.method == "POST":
            return self._schema_errors("ContactMerge", request.body)
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
        if request.path == "/contacts/search":
            return self._search(request.body)
        if request.path == "/batch":
            return self._batch(request.body["operations"])
        merge = _MERGE.match(request.path)
        if merge is not None:
            return self._merge(path_key(merge.group(1)), request.body["merge"])
        match = _ROUTE.match(request.path)
        assert match is not None
        status, result = self._put(match.group(1), path_key(match.group(2)), request.body)
        return Reply(status, result)

    def _search(self, body: dict[str, Any]) -> Reply:
        if not self.searchable:
            return self.error_reply(404, "no such operation")
        keys, phones = set(body.get("keys") or []), set(body.get("phones") or [])
        emails = {e.lower() for e in body.get("emails") or []}
        found = []
        for record in self.collection("contacts").values():
            fields = record["fields"]
            stored = [str(v) for k, v in fields.items() if "phone" in k and v]
            email = str(fields.get("email") or "").lower()
            by_phone = any(_digit_forms(p) & phones for p in stored)
            if record.get("key") in keys or by_phone or (email and email in emails):
                found.append(
                    {
                        "id": record["id"],
                        "contact_key": record.get("key"),
                        "phones": stored,
                        "email": fields.get("email"),
                        "updated_at": record.get("updated_at"),
                    }
                )
        return Reply(200, {"results": found})

    def _merge(self, keep_key: str, other_key: str) -> Reply:
        if not self.mergeable:
            return self.error_reply(404, "no such operation")
        contacts = self.collection("contacts")
        keep = contacts.get(keep_key)
        if keep is None:
            return self.error_reply(404, f"no contact {keep_key}")
        other = contacts.pop(other_key, None)
        if other is None or other is keep:
            return Reply(200, {"id": keep["id"], "merged": False})
        for name, value in other["fields"].items():
            if keep["fields"].get(name) in (None, ""):
                keep["fields"][name] = value
        for collection in ("cases", "notes", "outcomes", "consents"):
            for record in self.collection(collection).values():
                if record.get("contact_key") == other_key:
                    record["contact_key"] = keep_key
        self._touch(keep)
        return Reply(200, {"id": keep["id"], "merged": True})

    def _put(self, collection: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        records = self.collection(collection)
        adopt = body.get("adopt")
        if adopt and key not in records:
            old = next((k for k, r in records.items() if r["id"] == adopt), None)
            if old is None:
                return 404, {"error": {"code": "not_found", "message": f"no contact {adopt}"}}
            records[key] = records.pop(old)
        record = records.get(key)
        created = record is None
        if record is None:
            record = records[key] = {"id": uuid.uuid4().hex, "key": key, "fields": {}}
        record["fields"].update(body["fields"])
        record["key"] = key
        self._touch(record)
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
            failed = status >= 400
            results.append({"status": status, **result})
        return Reply(207 if failed else 200, {"results": results})

    def item_rejection(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """A hook for tests: the REST CRM's business validation (none by default)."""
        return None
