"""sObject Collections: upsert by external id, create, update, delete, retrieve; one
result per record (200 even when records failed), ``allOrNone`` rolls all back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base import RecordedRequest, Reply
from .errors import sf_error
from .records import Error, error
from .rows import (
    external_id_refusal,
    invisible_field,
    row_json,
    setup_errors,
    setup_refusal,
    unknown_type,
)

if TYPE_CHECKING:
    from .server import SalesforceServer


def _all_or_none(
    server: SalesforceServer, plans: list[tuple[Any, list[Error]]], all_or_none: bool
) -> tuple[bool, list[tuple[Any, list[Error]]]]:
    failed = any(errors for _, errors in plans)
    if not (failed and all_or_none):
        return True, plans
    rolled = error(
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "Record rolled back because not all records were valid and the request was "
        "using AllOrNone header",
    )
    return False, [(p, errors or [rolled]) for p, errors in plans]


def upsert_many(server: SalesforceServer, request: RecordedRequest) -> Reply:
    sobject, field = request.params["type"], request.params["field"]
    unknown = unknown_type(server, sobject)
    if unknown is not None:
        return unknown
    refused = external_id_refusal(server, sobject, field)
    if refused is not None:
        return Reply(400, [sf_error("INVALID_FIELD", refused.body[0]["message"])])
    plans: list[tuple[Any, list[Error]]] = []
    seen: set[str] = set()
    for record in request.body["records"]:
        fields = {k: v for k, v in record.items() if k != "attributes"}
        key = str(record[field]).lower()
        if key in seen:
            message = f"Duplicate external id specified: {record[field]}"
            plans.append((None, [error("DUPLICATE_EXTERNAL_ID", message, [field])]))
            continue
        seen.add(key)
        found = server.store.by_field(sobject, field, record[field])
        if len(found) > 1:
            ids = ", ".join(r["Id"] for r in found)
            message = f"{field}: more than one record found for external id field: [{ids}]"
            plans.append((None, [error("DUPLICATE_EXTERNAL_ID", message, [field])]))
            continue
        target = found[0] if found else None
        changes, errors = server.store.prepare(sobject, fields, target)
        if target is None and not errors:
            errors = setup_errors(server, sobject, changes)
        plans.append(((target, changes), errors))
    apply, plans = _all_or_none(server, plans, bool(request.body.get("allOrNone")))
    results: list[dict[str, Any]] = []
    for plan, errors in plans:
        if errors or not apply:
            results.append({"success": False, "errors": errors})
            continue
        target, changes = plan
        stored = server.store.apply(sobject, changes, target)
        results.append(
            {"id": stored["Id"], "success": True, "errors": [], "created": target is None}
        )
    return Reply(200, results)


def create_many(server: SalesforceServer, request: RecordedRequest) -> Reply:
    plans: list[tuple[Any, list[Error]]] = []
    for record in request.body["records"]:
        sobject = record["attributes"]["type"]
        if not server.org.exists(sobject) or setup_refusal(server, sobject) is not None:
            plans.append(
                (None, [error("INVALID_TYPE", f"sObject type {sobject} cannot be created")])
            )
            continue
        fields = {k: v for k, v in record.items() if k != "attributes"}
        changes, errors = server.store.prepare(sobject, fields, None)
        errors = errors or setup_errors(server, sobject, changes)
        plans.append(((sobject, changes), errors))
    apply, plans = _all_or_none(server, plans, bool(request.body.get("allOrNone")))
    results: list[dict[str, Any]] = []
    for plan, errors in plans:
        if errors or not apply:
            results.append({"id": None, "success": False, "errors": errors})
            continue
        stored = server.store.apply(plan[0], plan[1], None)
        results.append({"id": stored["Id"], "success": True, "errors": []})
    return Reply(200, results)


def update_many(server: SalesforceServer, request: RecordedRequest) -> Reply:
    plans: list[tuple[Any, list[Error]]] = []
    for record in request.body["records"]:
        sobject = record["attributes"]["type"]
        target = (
            server.store.get(sobject, str(record["Id"])) if server.org.exists(sobject) else None
        )
        if target is None:
            deleted = server.org.exists(sobject) and server.store.deleted(
                sobject, str(record["Id"])
            )
            code = "ENTITY_IS_DELETED" if deleted else "INVALID_CROSS_REFERENCE_KEY"
            plans.append((record["Id"], [error(code, f"invalid record id {record['Id']}")]))
            continue
        fields = {k: v for k, v in record.items() if k not in ("attributes", "Id")}
        changes, errors = server.store.prepare(sobject, fields, target)
        plans.append(((sobject, target, changes), errors))
    apply, plans = _all_or_none(server, plans, bool(request.body.get("allOrNone")))
    results: list[dict[str, Any]] = []
    for plan, errors in plans:
        if errors or not apply:
            record_id = plan if isinstance(plan, str) else plan[1]["Id"] if plan else None
            results.append({"id": record_id, "success": False, "errors": errors})
            continue
        sobject, target, changes = plan
        server.store.apply(sobject, changes, target)
        results.append({"id": target["Id"], "success": True, "errors": []})
    return Reply(200, results)


def delete_many(server: SalesforceServer, request: RecordedRequest) -> Reply:
    results: list[dict[str, Any]] = []
    for record_id in [i for i in request.query.get("ids", "").split(",") if i]:
        found = server.store.by_id(record_id)
        if found is None:
            results.append(
                {
                    "id": record_id,
                    "success": False,
                    "errors": [error("ENTITY_IS_DELETED", "entity is deleted")],
                }
            )
            continue
        server.store.delete(*found)
        results.append({"id": record_id, "success": True, "errors": []})
    return Reply(200, results)


def read_many(server: SalesforceServer, request: RecordedRequest) -> Reply:
    sobject = request.params["type"]
    unknown = unknown_type(server, sobject)
    if unknown is not None:
        return unknown
    names = [n for n in request.query.get("fields", "").split(",") if n]
    bad = invisible_field(server, sobject, names)
    if not names or bad is not None:
        return Reply(
            400, [sf_error("INVALID_FIELD", f"No such column '{bad}' on entity '{sobject}'")]
        )
    out: list[dict[str, Any] | None] = []
    for record_id in [i for i in request.query.get("ids", "").split(",") if i]:
        record = server.store.get(sobject, record_id)
        out.append(None if record is None else row_json(server, request, sobject, record, names))
    return Reply(200, out)
