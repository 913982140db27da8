"""How HubSpot words its failures and its quota (an ``ErrorDialect`` of ``connectors.http``).

Errors are ``{"status": "error", "message", "category", "errors": [{"message", "in",
"code"}]}``, as a whole answer or as one item of a 207 batch answer. A property the portal
lacks is ``PROPERTY_DOESNT_EXIST``: the refusal says to run ``wa-bridge crm setup``.

Quota (CRM.md "Limits"): every answer carries ``X-HubSpot-RateLimit-*``: the ten-second
window (``-Interval-Milliseconds``, ``-Max``, ``-Remaining``), ``-Secondly[-Remaining]``
and, for private apps, ``-Daily[-Remaining]``. A 429 names its ``policyName``:
``TEN_SECONDLY_ROLLING`` or ``SECONDLY`` wait ``Retry-After`` (else the window's
interval); ``DAILY`` means the daily budget is spent until midnight in the account's
time zone. A 503's ``Retry-After`` binds as HTTP says (every later request waits).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx

from wa_bridge.connectors.http import ErrorDialect
from wa_bridge.connectors.quota import QuotaReading, QuotaWindow

__all__ = ["HUBSPOT_ERRORS", "error_text"]

_PREFIX: Final = "X-HubSpot-RateLimit-"
_INTERVAL_HEADER: Final = _PREFIX + "Interval-Milliseconds"
# What is left of each window, by the header that says it.
_WINDOWS: Final[tuple[tuple[QuotaWindow, str], ...]] = (
    ("daily", "Daily-Remaining"),
    ("interval", "Remaining"),
    ("secondly", "Secondly-Remaining"),
)
_SETUP_HINT: Final = (
    "a property the mapping writes does not exist in HubSpot: run `wa-bridge crm setup`"
)


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


def _codes(body: Any) -> set[str]:
    if not isinstance(body, dict):
        return set()
    details = body.get("errors")
    found = {str(body.get("subCategory") or "")}
    if isinstance(details, list):
        found |= {str(d.get("code")) for d in details if isinstance(d, dict) and d.get("code")}
    return found


def _number(headers: httpx.Headers, name: str) -> int | None:
    raw = headers.get(_PREFIX + name)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


class _HubSpotDialect(ErrorDialect):
    """HubSpot's errors, hints and quota headers, as the module docstring tells."""

    daily_reset = "midnight"

    def message(self, body: Any) -> str | None:
        return error_text(body) if isinstance(body, dict) else None

    def wait_s(self, headers: httpx.Headers) -> float | None:
        """``Retry-After``, else the rate-limit window HubSpot reports."""
        retry_after_s = super().wait_s(headers)
        if retry_after_s is not None:
            return retry_after_s
        raw = headers.get(_INTERVAL_HEADER)
        try:
            return max(0.0, float(raw) / 1000.0) if raw is not None else None
        except ValueError:
            return None

    def hint(self, status: int, body: Any) -> str | None:
        if status != 400:
            return None
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        if "PROPERTY_DOESNT_EXIST" in _codes(body) or "PROPERTY_DOESNT_EXIST" in message:
            return _SETUP_HINT
        # CRM search names no code for a filter on a property the portal lacks, only
        # "There was a problem with the request: <name> does not exist".
        if "does not exist" in message:
            return _SETUP_HINT
        return None

    def quota(self, status: int, headers: httpx.Headers, body: Any) -> QuotaReading:
        remaining: dict[QuotaWindow, int] = {}
        for window, name in _WINDOWS:
            value = _number(headers, name)
            if value is not None:
                remaining[window] = value
        policy = body.get("policyName") if isinstance(body, dict) else None
        spent = status == 429 and policy == "DAILY"
        if status == 429:
            wait_s = None if spent else self.wait_s(headers)
        else:  # a 503's Retry-After binds like a 429's (HTTP's own signal)
            wait_s = super().quota(status, headers, body).wait_s
        window_wait_s = None
        if status < 400:  # a refusal's own wait (Retry-After) is the better word
            if remaining.get("interval", 1) <= 0:
                window_wait_s = (_number(headers, "Interval-Milliseconds") or 10_000) / 1000
            if remaining.get("secondly", 1) <= 0:
                window_wait_s = max(window_wait_s or 0.0, 1.0)
        return QuotaReading(
            wait_s=wait_s,
            window_wait_s=window_wait_s,
            daily_remaining=remaining.get("daily"),
            daily_limit=_number(headers, "Daily"),
            daily_spent=spent,
            remaining=remaining,
        )


HUBSPOT_ERRORS: Final = _HubSpotDialect("hubspot")
