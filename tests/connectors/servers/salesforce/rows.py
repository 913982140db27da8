"""One record at a time: create, read, update, delete, upsert by external id, describe;
and the rules of the permission objects (a grant names a real custom field…)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..base import RecordedRequest, Reply
from .errors import sf_error, single_error
from .records import Error, Record, error
from .schema import ID_PREFIXES

if TYPE_CHECKING:
    from .server import SalesforceServer


def base_path(server: SalesforceServer, request: RecordedRequest) -> str:
    return f"/services/data/v{request.params['version']}"


def row_json(
    server: SalesforceServer,
    request: RecordedRequest,
    sobject: str,
    record: Record,
    names: list[str] | None,
) -> dict[str, Any]:
    url = f"{base_path(server, request)}/sobjects/{sobject}/{record['Id']}"
    out: dict[str, Any] = {"attributes": {"type": sobject, "url": url}}
    if names is None:
        names = [f.name for f in server.org.visible_fields(sobject)]
    for name in names:
        definition = server.org.find_field(sobject, name)
        canonical = definition.name if definition else name
        out[canonical] = record.get(canonical)
    return out


def unknown_type(server: SalesforceServer, sobject: str) -> Reply | None:
    if server.org.exists(sobject):
        return None
    message = f"The requested resource does not exist: sObject type '{sobject}' is not supported."
    return Reply(404, [sf_error("NOT_FOUND", message)])


def invisible_field(server: SalesforceServer, sobject: str, names: list[str]) -> str | None:
    return next((n for n in names if server.org.visible(sobject, n) is None), None)


def describe(server: SalesforceServer, request: RecordedRequest) -> Reply:
    sobject = request.params["type"]
    unknown = unknown_type(server, sobject)
    if unknown is not None:
        return unknown
    fields = [f.describe() for f in server.org.visible_fields(sobject)]
    body = {
        "name": sobject,
        "label": sobject,
        "keyPrefix": ID_PREFIXES.get(sobject),
        "custom": False,
        "createable": True,
        "updateable": True,
        "queryable": True,
        "searchable": True,
        "fields": fields,
    }
    return Reply(200, body)


def setup_refusal(server: SalesforceServer, sobject: str) -> Reply | None:
    setup = ("PermissionSet", "FieldPermissions", "PermissionSetAssignment")
    if sobject in setup and not server.manage_permission_sets:
        message = "insufficient access rights: the user cannot manage permission sets"
        return Reply(403, [sf_error("INSUFFICIENT_ACCESS", message)])
    if sobject == "User":
        return Reply(400, [sf_error("INVALID_TYPE", "Users cannot be created through this API")])
    return None


def create_record(
    server: SalesforceServer, sobject: str, fields: dict[str, Any]
) -> tuple[Record | None, list[Error]]:
    changes, errors = server.store.prepare(sobject, fields, None)
    errors = errors or setup_errors(server, sobject, changes)
    if errors:
        return None, errors
    return server.store.apply(sobject, changes, None), []


def setup_errors(server: SalesforceServer, sobject: str, changes: dict[str, Any]) -> list[Error]:
    """The rules of the permission objects (a grant names a real custom field…)."""
    if sobject == "FieldPermissions":
        target = str(changes.get("Field", ""))
        owner, _, name = target.partition(".")
        if owner != changes.get("SobjectType") or name not in server.org.custom_fields(owner):
            return [error("INVALID_FIELD", f"Field: bad value: {target}", ["Field"])]
        if changes.get("PermissionsEdit") and not changes.get("PermissionsRead"):
            message = "Permission Read is required when Permission Edit is enabled"
            return [error("FIELD_INTEGRITY_EXCEPTION", message, ["PermissionsRead"])]
        for other in server.store.all("FieldPermissions"):
            if (
                other["ParentId"] == changes["ParentId"]
                and other["Field"].lower() == target.lower()
            ):
                return [error("DUPLICATE_VALUE", f"duplicate value found: {target}")]
    if sobject == "PermissionSetAssignment":
        for other in server.store.all("PermissionSetAssignment"):
            if (other["PermissionSetId"], other["AssigneeId"]) == (
                changes["PermissionSetId"],
                changes["AssigneeId"],
            ):
                return [error("DUPLICATE_VALUE", "Duplicate PermissionSetAssignment")]
    if sobject == "PermissionSet" and not re.fullmatch(
        r"[A-Za-z](?:[A-Za-z0-9]|_(?!_))*", str(changes.get("Name", ""))
    ):
        return [error("FIELD_INTEGRITY_EXCEPTION", "Name: bad API name", ["Name"])]
    return []


def create(server: SalesforceServer, request: RecordedRequest) -> Reply:
    sobject = request.params["type"]
    refused = unknown_type(server, sobject) or setup_refusal(server, sobject)
    if refused is not None:
        return refused
    record, errors = create_record(server, sobject, request.body)
    if record is None:
        return single_error(errors)
    return Reply(201, {"id": record["Id"], "success": True, "errors": []})


def find_row(server: SalesforceServer, sobject: str, record_id: str) -> Record | Reply:
    record = server.store.get(sobject, record_id)
    if record is not None:
        return record
    if server.store.deleted(sobject, record_id) is not None:
        return Reply(404, [sf_error("ENTITY_IS_DELETED", "entity is deleted")])
    return Reply(404, [sf_error("NOT_FOUND", "The requested resource does not exist")])


def read(server: SalesforceServer, request: RecordedRequest) -> Reply:
    sobject = request.params["type"]
    unknown = unknown_type(server, sobject)
    if unknown is not None:
        return unknown
    found = find_row(server, sobject, request.params["id"])
    if isinstance(found, Reply):
        return found
    names = [n for n in request.query.get("fields", "").split(",") if n] or None
    if names and (bad := invisible_field(server, sobject, names)) is not None:
        return Reply(
            400, [sf_error("INVALID_FIELD", f"No such column '{bad}' on entity '{sobject}'")]
        )
    return Reply(200, row_json(server, request, sobject, found, names))


def update(server: SalesforceServer, request: RecordedRequest) -> Reply:
    sobject = request.params["type"]
    unknown = unknown_type(server, sobject)
    if unknown is not None:
        return unknown
    found = find_row(server, sobject, request.params["id"])
    if isinstance(found, Reply):
        return found
    changes, errors = server.store.prepare(sobject, request.body, found)
    if errors:
        return single_error(errors)
    server.store.apply(sobject, changes, found)
    return Reply(204)


def delete_row(server: SalesforceServer, request: RecordedRequest) -> Reply:
    sobject = request.params["type"]
    found = find_row(server, sobject, request.params["id"])
    if isinstance(found, Reply):
        return found
    server.store.delete(sobject, found)
    return Reply(204)


def external_id_refusal(server: SalesforceServer, sobject: str, field: str) -> Reply | None:
    definition = server.org.visible(sobject, field)
    if definition is None or not definition.external_id:
        message = f"Provided external ID field does not exist or is not accessible: {field}"
        return Reply(404, [sf_error("NOT_FOUND", message)])
    return None


def upsert(server: SalesforceServer, request: RecordedRequest) -> Reply:
    sobject, field, value = (request.params[k] for k in ("type", "field", "value"))
    refused = unknown_type(server, sobject) or external_id_refusal(server, sobject, field)
    if refused is not None:
        return refused
    found = server.store.by_field(sobject, field, value)
    if len(found) > 1:
        base = base_path(server, request)
        return Reply(300, [f"{base}/sobjects/{sobject}/{r['Id']}" for r in found])
    canonical = server.org.find_field(sobject, field)
    assert canonical is not None
    if not found:
        if request.query.get("updateOnly") == "true":
            return Reply(404, [sf_error("NOT_FOUND", "The requested resource does not exist")])
        record, errors = create_record(server, sobject, {**request.body, canonical.name: value})
        if record is None:
            return single_error(errors)
        return Reply(201, {"id": record["Id"], "success": True, "errors": [], "created": True})
    changes, errors = server.store.prepare(sobject, request.body, found[0])
    if errors:
        return single_error(errors)
    server.store.apply(sobject, changes, found[0])
    if float(request.params["version"]) < 46.0:
        return Reply(204)
    return Reply(200, {"id": found[0]["Id"], "success": True, "errors": [], "created": False})


def read_by_external_id(server: SalesforceServer, request: RecordedRequest) -> Reply:
    sobject, field, value = (request.params[k] for k in ("type", "field", "value"))
    refused = unknown_type(server, sobject) or external_id_refusal(server, sobject, field)
    if refused is not None:
        return refused
    found = server.store.by_field(sobject, field, value)
    if not found:
        return Reply(404, [sf_error("NOT_FOUND", "The requested resource does not exist")])
    if len(found) > 1:
        base = base_path(server, request)
        return Reply(300, [f"{base}/sobjects/{sobject}/{r['Id']}" for r in found])
    return Reply(200, row_json(server, request, sobject, found[0], None))
