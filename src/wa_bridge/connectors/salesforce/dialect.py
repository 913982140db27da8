"""How Salesforce words its failures (an :class:`~wa_bridge.connectors.http.ErrorDialect`).

Errors are a JSON array ``[{"message", "errorCode", "fields"}]`` (a record of an sObject
Collections answer has the same items, with ``statusCode``, in its ``errors``). A spent API
allocation is 403 ``REQUEST_LIMIT_EXCEEDED``: a rate limit, not a refusal.
"""

from __future__ import annotations

from typing import Any, Final

from wa_bridge.connectors.http import ErrorDialect, rate_limit_429

__all__ = ["SALESFORCE_ERRORS"]


def _code(item: dict[str, Any]) -> str | None:
    code = item.get("errorCode") or item.get("statusCode")
    return str(code) if code is not None else None


def _message(body: Any) -> str | None:
    if not isinstance(body, list):
        return None
    parts = []
    for item in body:
        if isinstance(item, dict):
            fields = item.get("fields") or []
            suffix = f" [{', '.join(map(str, fields))}]" if fields else ""
            parts.append(f"{_code(item) or 'ERROR'}: {item.get('message', '')}{suffix}")
    return "; ".join(parts) or None


def _rate_limit(status: int, body: Any) -> str | None:
    first = body[0] if isinstance(body, list) and body else None
    if status == 403 and isinstance(first, dict) and _code(first) == "REQUEST_LIMIT_EXCEEDED":
        return "REQUEST_LIMIT_EXCEEDED (API allocation used up)"
    return rate_limit_429(status, body)


SALESFORCE_ERRORS: Final = ErrorDialect("salesforce", message=_message, rate_limit=_rate_limit)
