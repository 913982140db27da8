"""How Salesforce words its failures and its quota (an ``ErrorDialect`` of ``connectors.http``).

Errors are a JSON array ``[{"message", "errorCode", "fields"}]`` (a record of an sObject
Collections answer has the same items, with ``statusCode``, in its ``errors``). A field
the org lacks, or that field-level security hides from the API user, is ``INVALID_FIELD``
(``INVALID_FIELD_FOR_INSERT_UPDATE`` when it is read-only to the user): the refusal says
to run ``wa-bridge crm setup``.

Quota: every answer carries ``Sforce-Limit-Info: api-usage=N/M`` (the org's daily
allocation, a rolling 24 hours). A spent allocation is 403 ``REQUEST_LIMIT_EXCEEDED``
("TotalRequests Limit exceeded"), not 429, and has no ``Retry-After``; the same code while
the header shows some allocation left is the limit on concurrent long requests: a rate
limit.
"""

from __future__ import annotations

import re
from typing import Any, Final

import httpx

from wa_bridge.connectors.http import ErrorDialect
from wa_bridge.connectors.quota import QuotaReading

__all__ = ["SALESFORCE_ERRORS"]

_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
_SETUP_CODES: Final = frozenset({"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE"})
_SETUP_HINT: Final = (
    "a field the mapping writes is missing or not granted to the API user: "
    "run `wa-bridge crm setup`"
)


def _code(item: dict[str, Any]) -> str | None:
    code = item.get("errorCode") or item.get("statusCode")
    return str(code) if code is not None else None


def _items(body: Any) -> list[dict[str, Any]]:
    return [item for item in body if isinstance(item, dict)] if isinstance(body, list) else []


def _limit_exceeded(status: int, body: Any) -> bool:
    first = _items(body)[:1]
    return status == 403 and bool(first) and _code(first[0]) == "REQUEST_LIMIT_EXCEEDED"


class _SalesforceDialect(ErrorDialect):
    """Salesforce's errors, hints and allocation header, as the module docstring tells."""

    daily_reset = "rolling"

    def message(self, body: Any) -> str | None:
        parts = []
        for item in _items(body):
            fields = item.get("fields") or []
            suffix = f" [{', '.join(map(str, fields))}]" if fields else ""
            parts.append(f"{_code(item) or 'ERROR'}: {item.get('message', '')}{suffix}")
        return "; ".join(parts) or None

    def rate_limit(self, status: int, body: Any) -> str | None:
        if _limit_exceeded(status, body):
            return "REQUEST_LIMIT_EXCEEDED (API allocation used up)"
        return super().rate_limit(status, body)

    def hint(self, status: int, body: Any) -> str | None:
        if any(_code(item) in _SETUP_CODES for item in _items(body)):
            return _SETUP_HINT
        return None

    def quota(self, status: int, headers: httpx.Headers, body: Any) -> QuotaReading:
        standard = super().quota(status, headers, body)
        match = _USAGE.search(headers.get("Sforce-Limit-Info", ""))
        if match is None:
            spent = _limit_exceeded(status, body)
            return QuotaReading(wait_s=standard.wait_s, daily_spent=spent)
        used, limit = int(match.group(1)), int(match.group(2))
        remaining = max(0, limit - used)
        # the usage header is the allocation's own word: a refusal while some is left is
        # the limit on concurrent long requests
        spent = _limit_exceeded(status, body) and remaining == 0
        return QuotaReading(
            wait_s=standard.wait_s,
            daily_remaining=0 if spent else remaining,
            daily_limit=limit,
            daily_spent=spent,
            remaining={"daily": remaining},
        )


SALESFORCE_ERRORS: Final = _SalesforceDialect("salesforce")
