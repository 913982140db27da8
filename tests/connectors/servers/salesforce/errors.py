"""Salesforce's error bodies: a JSON array of ``{"message", "errorCode", "fields"}``;
sObject Collections results carry ``statusCode`` instead (CRM.md "Error body")."""

from __future__ import annotations

from typing import Any

from ..base import Reply
from .records import Error


def sf_error(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"message": message, "errorCode": code}
    if fields:
        item["fields"] = fields
    return item


def single_error(errors: list[Error], status: int = 400) -> Reply:
    """Collection-style errors (``statusCode``) as a single request's error array."""
    return Reply(status, [sf_error(e["statusCode"], e["message"], e.get("fields")) for e in errors])
