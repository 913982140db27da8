"""The shared httpx client of the HTTP connectors, and THE error-mapping boundary.

Every HTTP connector sends through :func:`send`, which turns httpx exceptions and CRM
status codes into :mod:`wa_bridge.errors` with :func:`crm_error`, chained ``from exc``:

====================================================  ============================
timeouts, connect/read/write errors, proxy errors,    ``CrmUnavailable``
remote protocol errors, bad encodings, redirect
loops, 5xx, 408, 425
429 (``Retry-After`` in seconds or as an HTTP-date;   ``CrmRateLimited``
HubSpot falls back to its interval header),
Salesforce 403 ``REQUEST_LIMIT_EXCEEDED``
any other 3xx/4xx, 401 and 403 included               ``CrmRejected``
an unsupported URL scheme (a bad ``crm_base_url``)    ``ConfigError``
====================================================  ============================

No retry happens here: the worker owns the retry policy. Nothing here logs tokens, URLs
with keys in them, or request bodies.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal

import httpx
import orjson

from wa_bridge.errors import (
    ConfigError,
    CrmRateLimited,
    CrmRejected,
    CrmUnavailable,
    WaBridgeError,
)
from wa_bridge.operations import FieldValue

if TYPE_CHECKING:
    from wa_bridge.settings import Settings

__all__ = [
    "EXCEPTION_MAP",
    "Vendor",
    "build_client",
    "client_for",
    "crm_error",
    "hubspot_error_text",
    "json_value",
    "parse_retry_after",
    "rest_error_text",
    "send",
]

Vendor = Literal["rest", "hubspot", "salesforce"]

# Each httpx exception class → the most specific wa_bridge class. Exact classes, not a
# walk up the MRO: a test fails when httpx grows a class nobody placed here.
EXCEPTION_MAP: Final[Mapping[type[httpx.HTTPError], type[WaBridgeError]]] = {
    httpx.HTTPError: CrmUnavailable,
    httpx.RequestError: CrmUnavailable,
    httpx.TransportError: CrmUnavailable,
    httpx.TimeoutException: CrmUnavailable,
    httpx.ConnectTimeout: CrmUnavailable,
    httpx.ReadTimeout: CrmUnavailable,
    httpx.WriteTimeout: CrmUnavailable,
    httpx.PoolTimeout: CrmUnavailable,
    httpx.NetworkError: CrmUnavailable,
    httpx.ReadError: CrmUnavailable,
    httpx.WriteError: CrmUnavailable,
    httpx.ConnectError: CrmUnavailable,
    httpx.CloseError: CrmUnavailable,
    httpx.ProxyError: CrmUnavailable,
    httpx.ProtocolError: CrmUnavailable,
    # h11 raises it when the connection state breaks under us too; retrying is safe.
    httpx.LocalProtocolError: CrmUnavailable,
    httpx.RemoteProtocolError: CrmUnavailable,
    httpx.DecodingError: CrmUnavailable,
    httpx.TooManyRedirects: CrmUnavailable,
    # A scheme httpx cannot speak: crm_base_url is wrong; fix the setting.
    httpx.UnsupportedProtocol: ConfigError,
    # Classified by its response's status code (see _status_error).
    httpx.HTTPStatusError: CrmRejected,
}

_RETRYABLE_STATUS: Final = frozenset({408, 425})
_MAX_CRM_ERROR_CHARS: Final = 1000
_HUBSPOT_INTERVAL_HEADER: Final = "X-HubSpot-RateLimit-Interval-Milliseconds"


def client_for(settings: Settings) -> httpx.AsyncClient:
    """The client of the HTTP CRM ``settings`` names; raises ConfigError without a base URL."""
    if not settings.crm_base_url:
        raise ConfigError(f"WA_BRIDGE_CRM_BASE_URL is required for connector {settings.connector}")
    token = settings.crm_token.get_secret_value() if settings.crm_token else None
    return build_client(
        settings.crm_base_url,
        token=token,
        timeout_s=settings.crm_timeout_s,
        vendor=settings.connector,
    )


def build_client(
    base_url: str, *, token: str | None, timeout_s: float, vendor: str
) -> httpx.AsyncClient:
    """An AsyncClient with all four timeouts set and Bearer auth; the caller closes it.

    ``vendor`` names the CRM in the error message of a bad ``base_url``.
    """
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"WA_BRIDGE_CRM_BASE_URL must be an http(s) URL for {vendor}")
    headers = {"Accept": "application/json", "User-Agent": "wa-bridge"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    timeout = httpx.Timeout(connect=timeout_s, read=timeout_s, write=timeout_s, pool=timeout_s)
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout)


def json_value(value: FieldValue) -> Any:
    """A field value as JSON: datetimes ISO 8601, decimals as strings (no float rounding)."""
    if isinstance(value, tuple):
        return [json_value(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    vendor: Vendor,
    action: str,
    json: Any = None,
    params: Mapping[str, str] | None = None,
) -> httpx.Response:
    """Send one request; return a 2xx response or raise a :mod:`wa_bridge.errors` error.

    ``action`` names what was attempted (e.g. ``"upsert_contact"``) for the error message;
    it must not carry personal data (no keys, no values).
    """
    content = orjson.dumps(json) if json is not None else None
    headers = {"Content-Type": "application/json"} if content is not None else None
    try:
        response = await client.request(
            method, url, content=content, headers=headers, params=params
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise crm_error(exc, vendor=vendor, action=action) from exc
    return response


def crm_error(exc: httpx.HTTPError, *, vendor: Vendor, action: str) -> WaBridgeError:
    """THE translation of an httpx exception (or a non-2xx answer) into our error tree."""
    if isinstance(exc, httpx.HTTPStatusError):
        return _status_error(exc.response, vendor=vendor, action=action)
    cls = EXCEPTION_MAP.get(type(exc))
    if cls is None:  # a subclass httpx added after this table; fall back along the MRO
        cls = next(
            (EXCEPTION_MAP[k] for k in type(exc).__mro__ if k in EXCEPTION_MAP), CrmUnavailable
        )
    kind = type(exc).__name__
    if cls is ConfigError:
        return ConfigError(f"{vendor}: cannot {action}: {kind}; check WA_BRIDGE_CRM_BASE_URL")
    return CrmUnavailable(f"{vendor}: {action} failed with {kind}; the CRM is unreachable or slow")


def _status_error(response: httpx.Response, *, vendor: Vendor, action: str) -> WaBridgeError:
    status = response.status_code
    body = _json_body(response)
    message = _crm_message(body, vendor=vendor) or response.text[:_MAX_CRM_ERROR_CHARS]
    where = f"{vendor}: {action} got HTTP {status}"
    if status == 429:
        retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after_s is None and vendor == "hubspot":
            retry_after_s = _hubspot_interval_s(response)
        return CrmRateLimited(f"{where} (rate limited)", retry_after_s=retry_after_s)
    if (
        vendor == "salesforce"
        and status == 403
        and _salesforce_code(body) == "REQUEST_LIMIT_EXCEEDED"
    ):
        return CrmRateLimited(f"{where} REQUEST_LIMIT_EXCEEDED (API allocation used up)")
    if status >= 500 or status in _RETRYABLE_STATUS:
        retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
        return CrmUnavailable(f"{where}; the CRM is failing", retry_after_s=retry_after_s)
    hint = "check the token and its scopes" if status in (401, 403) else "see crm_error"
    return CrmRejected(f"{where} (rejected; {hint})", status_code=status, crm_error=message)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date), else None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _hubspot_interval_s(response: httpx.Response) -> float | None:
    raw = response.headers.get(_HUBSPOT_INTERVAL_HEADER)
    try:
        return max(0.0, float(raw) / 1000.0) if raw is not None else None
    except ValueError:
        return None


def _json_body(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def _salesforce_code(body: Any) -> str | None:
    if isinstance(body, list) and body and isinstance(body[0], dict):
        code = body[0].get("errorCode") or body[0].get("statusCode")
        return str(code) if code is not None else None
    return None


def _crm_message(body: Any, *, vendor: Vendor) -> str | None:
    """The CRM's own message from its error body; every field treated as optional."""
    if vendor == "hubspot":
        text = _hubspot_message(body)
    elif vendor == "salesforce":
        text = _salesforce_message(body)
    else:
        text = _rest_message(body)
    return text[:_MAX_CRM_ERROR_CHARS] if text else None


def hubspot_error_text(error: Mapping[str, Any]) -> str:
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


def _hubspot_message(body: Any) -> str | None:
    return hubspot_error_text(body) if isinstance(body, dict) else None


def _salesforce_message(body: Any) -> str | None:
    if not isinstance(body, list):
        return None
    parts = []
    for item in body:
        if isinstance(item, dict):
            code = item.get("errorCode") or item.get("statusCode") or "ERROR"
            fields = item.get("fields") or []
            suffix = f" [{', '.join(map(str, fields))}]" if fields else ""
            parts.append(f"{code}: {item.get('message', '')}{suffix}")
    return "; ".join(parts) or None


def rest_error_text(error: Mapping[str, Any]) -> str:
    """The REST CRM's ``{"code", "message", "field"}`` as one line."""
    text = f"{error.get('code', 'error')}: {error.get('message', '')}"
    return f"{text} (field {error['field']})" if error.get("field") else text


def _rest_message(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return rest_error_text(body["error"])
    return None
