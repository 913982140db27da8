"""HubSpot's error bodies (CRM.md "Error body", docs/api-reference/error-handling)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from ..base import Reply

CATEGORIES = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    409: "CONFLICT",
}


def hubspot_error(
    message: str, category: str, *, errors: list[dict[str, Any]] | None = None
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


def error_reply(status: int, message: str, *, field: str | None = None) -> Reply:
    category = CATEGORIES.get(status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR")
    errors = [{"message": message, "in": field}] if field else None
    return Reply(status, hubspot_error(message, category, errors=errors))


def not_found(what: str) -> Reply:
    return Reply(404, hubspot_error(f"{what} does not exist", "OBJECT_NOT_FOUND"))


def invalid_property(name: str, code: str, message: str) -> dict[str, Any]:
    """One item of a "Property values were not valid" error."""
    return {
        "isValid": False,
        "message": message,
        "error": code,
        "name": name,
        "localizedErrorMessage": message,
    }


def property_values_error(items: list[dict[str, Any]]) -> dict[str, Any]:
    """HubSpot's 400 for bad property values: the items JSON-encoded in the message (as
    HubSpot sends them) and again as ``errors[]`` with ``code`` and ``context``."""
    message = "Property values were not valid: " + orjson.dumps(items).decode()
    errors = [
        {
            "message": item["message"],
            "code": item["error"],
            "in": item["name"],
            "context": {"propertyName": [item["name"]]},
        }
        for item in items
    ]
    return hubspot_error(message, "VALIDATION_ERROR", errors=errors)


def rate_limit_body(policy: str) -> dict[str, Any]:
    return {
        "status": "error",
        "message": f"You have reached your {policy.lower()} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "requestId": str(uuid.uuid4()),
    }


def expired_body(seconds_ago: float) -> dict[str, Any]:
    return {
        "status": "error",
        "message": f"The OAuth token used to make this call expired {int(seconds_ago)} "
        "second(s) ago.",
        "correlationId": str(uuid.uuid4()),
        "category": "EXPIRED_AUTHENTICATION",
    }


def oauth_error(status: str, message: str) -> Reply:
    """The token endpoint's 400: ``{"status": "BAD_REFRESH_TOKEN", "message", ...}``."""
    return Reply(400, {"status": status, "message": message, "correlationId": str(uuid.uuid4())})
