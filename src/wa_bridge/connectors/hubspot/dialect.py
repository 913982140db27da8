"""How HubSpot words its failures (an :class:`~wa_bridge.connectors.http.ErrorDialect`).

Errors are ``{"status": "error", "message", "category", "errors": [{"message", "in"}]}``,
as a whole answer or as one item of a 207 batch answer. A 429 without ``Retry-After``
waits out the window of ``X-HubSpot-RateLimit-Interval-Milliseconds``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx

from wa_bridge.connectors.http import ErrorDialect, retry_after_header

__all__ = ["HUBSPOT_ERRORS", "error_text"]

_INTERVAL_HEADER: Final = "X-HubSpot-RateLimit-Interval-Milliseconds"


def error_text(error: Mapping[str, Any]) -> str:
    """HubSpot's ``{"message", "category", "errors": [{"message", "in"}]}`` as one line."""
    parts = [str(error.get("message", ""))]
    details = error.get("errors")
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and item.get("message"):
                where = f" (in {item['in']})" if item.get("in") else ""
                parts.append(f"{item['message']}{where}")
    category = error.get("category")
    text = "; ".join(p for p in parts if p)
    return f"{category}: {text}" if category else text


def _message(body: Any) -> str | None:
    return error_text(body) if isinstance(body, dict) else None


def _wait_s(headers: httpx.Headers) -> float | None:
    """``Retry-After``, else the rate-limit window HubSpot reports."""
    retry_after_s = retry_after_header(headers)
    if retry_after_s is not None:
        return retry_after_s
    raw = headers.get(_INTERVAL_HEADER)
    try:
        return max(0.0, float(raw) / 1000.0) if raw is not None else None
    except ValueError:
        return None


HUBSPOT_ERRORS: Final = ErrorDialect("hubspot", message=_message, wait_s=_wait_s)
