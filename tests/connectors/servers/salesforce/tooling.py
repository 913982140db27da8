"""The Tooling API's ``CustomField``: create a custom field (``Customize Application``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base import RecordedRequest, Reply
from .errors import sf_error
from .records import sf_time
from .schema import CUSTOM_NAME, CUSTOM_TYPES

if TYPE_CHECKING:
    from .server import SalesforceServer


def store_custom_field(
    server: SalesforceServer, sobject: str, name: str, metadata: dict[str, Any]
) -> str:
    field_id = server.store.new_id("CustomField")
    now = sf_time(int(server.wall() * 1000))
    server.collection("CustomField")[field_id] = {
        "Id": field_id,
        "DeveloperName": name.removesuffix("__c"),
        "TableEnumOrId": sobject,
        "NamespacePrefix": None,
        "FullName": f"{sobject}.{name}",
        "Metadata": dict(metadata),
        "CreatedDate": now,
        "LastModifiedDate": now,
    }
    return field_id


def create_custom_field(server: SalesforceServer, request: RecordedRequest) -> Reply:
    if not server.customize_application:
        message = "insufficient access rights: Customize Application is required"
        return Reply(403, [sf_error("INSUFFICIENT_ACCESS", message)])
    body = request.body
    sobject, _, name = body["FullName"].partition(".")
    metadata = body["Metadata"]
    problem = _custom_field_problem(server, sobject, name, metadata)
    if problem is not None:
        return Reply(400, [sf_error("FIELD_INTEGRITY_EXCEPTION", problem)])
    if name.lower() in {n.lower() for n in server.org.custom_fields(sobject)}:
        return Reply(
            400,
            [
                sf_error(
                    "DUPLICATE_DEVELOPER_NAME",
                    f"There is already a field named {name} on {sobject}.",
                )
            ],
        )
    field_id = store_custom_field(server, sobject, name, metadata)
    return Reply(201, {"id": field_id, "success": True, "errors": [], "warnings": [], "infos": []})


def _custom_field_problem(
    server: SalesforceServer, sobject: str, name: str, metadata: dict[str, Any]
) -> str | None:
    if not server.org.exists(sobject) or sobject in ("User", "PermissionSet", "FieldPermissions"):
        return f"FullName: no such object {sobject!r}"
    if not CUSTOM_NAME.match(name) or len(name) > 43:
        return f"FullName: {name!r} is not a valid custom field name (Name__c, ≤ 40 characters)"
    kind = metadata["type"]
    if kind not in CUSTOM_TYPES:
        return f"Metadata.type: unsupported field type {kind!r}"
    if kind == "Text" and not 1 <= int(metadata.get("length") or 0) <= 255:
        return "Metadata.length: a Text field needs a length from 1 to 255"
    if kind == "LongTextArea" and not 256 <= int(metadata.get("length") or 0) <= 131_072:
        return "Metadata.length: a LongTextArea needs a length from 256 to 131072"
    if kind == "LongTextArea" and not metadata.get("visibleLines"):
        return "Metadata.visibleLines: a LongTextArea needs visibleLines"
    if (metadata.get("externalId") or metadata.get("unique")) and not CUSTOM_TYPES[kind][1]:
        return f"Metadata.externalId: a {kind} field cannot be an external id or unique"
    return None
