"""The shared httpx client of the HTTP connectors, and THE error-mapping boundary.

Every HTTP connector sends through :func:`send`, which turns httpx exceptions and CRM
status codes into :mod:`wa_bridge.errors` with :func:`crm_error`, chained ``from exc``:

====================================================  ============================
timeouts, connect/read/write errors, proxy errors,    ``CrmUnavailable``
remote protocol errors, bad encodings, redirect
loops, 5xx, 408, 425
a rate limit as the CRM's :class:`ErrorDialect` says  ``CrmRateLimited``
(429 by default; ``Retry-After`` in seconds or as an
HTTP-date, or the dialect's own wait)
any other 3xx/4xx, 401 and 403 included               ``CrmRejected``
an unsupported URL scheme (a bad ``crm_base_url``)    ``ConfigError``
====================================================  ============================

A batch item the CRM refused (while the batch itself succeeded) goes through the same
:func:`classify` by :func:`item_error`. This module knows no vendor: each CRM brings its
:class:`ErrorDialect` (how to read its message, what it calls a rate limit, how long it
asks to wait, what its answers say about its quota, what to do about a refusal).

:func:`client_for` builds a CRM's client: its sign-in (a static bearer token, or an
``httpx.Auth`` from :mod:`wa_bridge.connectors.auth`) and its gate
(:mod:`wa_bridge.connectors.gate`), under which every request waits for the CRM's quota,
shared by every worker process, and which raises ``CrmQuotaExhausted`` when the daily
budget is spent.

No retry happens here: the worker owns the retry policy. Nothing here logs tokens, URLs
with keys in them, or request bodies.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

import httpx
import orjson

from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.connectors.gate import CrmGate, GatedTransport, gate_for
from wa_bridge.connectors.quota import (
    DailyReset,
    QuotaReading,
    parse_retry_after,
    standard_reading,
)
from wa_bridge.errors import (
    ConfigError,
    CrmRateLimited,
    CrmRejected,
    CrmUnavailable,
    WaBridgeError,
)
from wa_bridge.metrics import observe_crm_failure, observe_crm_request
from wa_bridge.operations import CrmOperation

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from wa_bridge.settings import Settings

__all__ = [
    "EXCEPTION_MAP",
    "ErrorDialect",
    "build_client",
    "classify",
    "client_for",
    "crm_error",
    "item_error",
    "parse_retry_after",
    "retry_after_header",
    "send",
]

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


def retry_after_header(headers: httpx.Headers) -> float | None:
    """The standard wait: the ``Retry-After`` header, if any."""
    return parse_retry_after(headers.get("Retry-After"))


class ErrorDialect:
    """How one CRM words its failures and its quota: :func:`classify` and the CRM's gate
    ask it and never name a vendor.

    The methods here answer for the generic REST CRM, by HTTP's own signals. A vendor
    subclasses and overrides what its CRM says otherwise (``super()`` for the rest);
    ``vendor`` names the CRM in error messages and metrics.
    """

    daily_reset: ClassVar[DailyReset] = "rolling"
    """How a spent daily budget comes back: ``midnight`` in the account's time zone, or
    ``rolling``."""

    def __init__(self, vendor: str) -> None:
        self.vendor: Final = vendor

    def message(self, body: Any) -> str | None:
        """The CRM's own message from a parsed error body, a whole answer's or one batch
        item's (every field treated as optional); None when there is none."""
        return None

    def rate_limit(self, status: int, body: Any) -> str | None:
        """Why the answer is a rate limit, for the error message (``"(rate limited)"``),
        or None when it is not one: HTTP 429."""
        return "(rate limited)" if status == 429 else None

    def wait_s(self, headers: httpx.Headers) -> float | None:
        """Seconds the CRM asks us to wait after a rate limit, or None: ``Retry-After``."""
        return retry_after_header(headers)

    def hint(self, status: int, body: Any) -> str | None:
        """What the operator should do about a refusal, when the CRM's answer tells
        (``"run `wa-bridge crm setup`"`` for a field it lacks); else None."""
        return None

    def quota(self, status: int, headers: httpx.Headers, body: Any) -> QuotaReading:
        """What an answer says about the CRM's quota, for the gate (``body`` is the parsed
        error body of a status ≥ 400, else None): a 429's or 503's ``Retry-After``."""
        return standard_reading(status, headers, body)


def client_for(
    settings: Settings,
    dialect: ErrorDialect,
    *,
    engine: AsyncEngine | None = None,
    auth: httpx.Auth | None = None,
    base_url: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> httpx.AsyncClient:
    """The client of the HTTP CRM ``settings`` names; the caller closes it.

    Requests go through the CRM's gate, shared through ``engine``'s database (the state
    store; None: this process only). ``auth`` signs requests in (None: the static
    ``crm_token``); ``base_url`` overrides ``crm_base_url`` (an OAuth sign-in that learns
    the API's address from its token answer starts at the login site). Raises ConfigError
    without a base URL.
    """
    url = base_url or settings.crm_base_url
    if not url:
        raise ConfigError(f"WA_BRIDGE_CRM_BASE_URL is required for connector {settings.connector}")
    token = settings.crm_token.get_secret_value() if settings.crm_token and auth is None else None
    gate = gate_for(
        settings,
        vendor=dialect.vendor,
        read=dialect.quota,
        daily_reset=dialect.daily_reset,
        engine=engine,
        clock=clock,
    )
    return build_client(
        url,
        token=token,
        timeout_s=settings.crm_timeout_s,
        vendor=settings.connector,
        auth=auth,
        gate=gate,
    )


def build_client(
    base_url: str,
    *,
    token: str | None,
    timeout_s: float,
    vendor: str,
    auth: httpx.Auth | None = None,
    gate: CrmGate | None = None,
) -> httpx.AsyncClient:
    """An AsyncClient with all four timeouts set and Bearer auth (``token``, or ``auth``),
    whose requests go through ``gate`` when given; the caller closes it. ``vendor`` names
    the CRM in the error message of a bad ``base_url``.
    """
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"WA_BRIDGE_CRM_BASE_URL must be an http(s) URL for {vendor}")
    headers = {"Accept": "application/json", "User-Agent": "wa-bridge"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    timeout = httpx.Timeout(connect=timeout_s, read=timeout_s, write=timeout_s, pool=timeout_s)
    transport = GatedTransport(gate, _environment_transport(base_url)) if gate else None
    return httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=timeout, auth=auth, transport=transport
    )


def _environment_transport(base_url: str) -> httpx.AsyncHTTPTransport:
    """httpx's default transport with the proxy the environment names for ``base_url``
    (``HTTPS_PROXY``…, unless ``NO_PROXY`` exempts the host), as httpx itself does for a
    client without a transport of its own."""
    url = httpx.URL(base_url)
    if urllib.request.proxy_bypass(url.host):
        return httpx.AsyncHTTPTransport()
    return httpx.AsyncHTTPTransport(proxy=urllib.request.getproxies().get(url.scheme))


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    dialect: ErrorDialect,
    action: str,
    json: Any = None,
    params: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
) -> httpx.Response:
    """Send one request; return a 2xx response or raise a :mod:`wa_bridge.errors` error.

    ``action`` names what was attempted (e.g. ``"upsert_contact"``) for the error message;
    it must not carry personal data (no keys, no values). The body is ``json``, or
    ``form`` form-encoded (OAuth token requests). The client's gate may raise
    CrmQuotaExhausted before sending.
    """
    content = orjson.dumps(json) if json is not None else None
    headers = {"Content-Type": "application/json"} if content is not None else None
    started = time.perf_counter()  # includes the gate's wait: what the batch waited for
    try:
        response = await client.request(
            method, url, content=content, data=form, headers=headers, params=params
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:
        observe_crm_failure(dialect.vendor, action, exc, time.perf_counter() - started)
        raise crm_error(exc, dialect=dialect, action=action) from exc
    observe_crm_request(dialect.vendor, action, response.status_code, time.perf_counter() - started)
    return response


def crm_error(exc: httpx.HTTPError, *, dialect: ErrorDialect, action: str) -> WaBridgeError:
    """THE translation of an httpx exception (or a non-2xx answer) into our error tree."""
    vendor = dialect.vendor
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        return classify(
            dialect,
            response.status_code,
            _json_body(response),
            where=f"{vendor}: {action} got HTTP {response.status_code}",
            headers=response.headers,
            text=response.text,
        )
    cls = EXCEPTION_MAP.get(type(exc))
    if cls is None:  # a subclass httpx added after this table; fall back along the MRO
        cls = next(
            (EXCEPTION_MAP[k] for k in type(exc).__mro__ if k in EXCEPTION_MAP), CrmUnavailable
        )
    kind = type(exc).__name__
    if cls is ConfigError:
        return ConfigError(f"{vendor}: cannot {action}: {kind}; check WA_BRIDGE_CRM_BASE_URL")
    return CrmUnavailable(f"{vendor}: {action} failed with {kind}; the CRM is unreachable or slow")


def item_error(
    dialect: ErrorDialect, op: CrmOperation, *, status: int, body: Any, what: str
) -> WaBridgeError:
    """The error of ``op``'s record, which the CRM refused inside a batch that succeeded.

    Classified like a whole answer with ``status`` (vendors that give no status per item
    pass 400); ``what`` says where (``"refused in upsert Contact"``).
    """
    where = f"{dialect.vendor}: {op.kind} of event {op.event_id} {what}"
    return classify(dialect, status, body, where=where, text="the record failed without a message")


def classify(
    dialect: ErrorDialect,
    status: int,
    body: Any,
    *,
    where: str,
    headers: httpx.Headers | None = None,
    text: str = "",
) -> WaBridgeError:
    """THE classification of a CRM's failure answer (a whole answer or one batch item).

    A rate limit (as ``dialect`` says) → CrmRateLimited with the dialect's wait; 5xx, 408,
    425 → CrmUnavailable (with ``Retry-After``); anything else → CrmRejected with the CRM's
    own message from ``body``, else ``text``. ``where`` starts the error message.
    """
    reason = dialect.rate_limit(status, body)
    if reason is not None:
        wait_s = dialect.wait_s(headers) if headers is not None else None
        return CrmRateLimited(f"{where} {reason}", retry_after_s=wait_s)
    if status >= 500 or status in _RETRYABLE_STATUS:
        wait_s = retry_after_header(headers) if headers is not None else None
        return CrmUnavailable(f"{where}; the CRM is failing", retry_after_s=wait_s)
    message = (dialect.message(body) or text)[:_MAX_CRM_ERROR_CHARS]
    hint = dialect.hint(status, body)
    if hint is None:
        hint = "check the token and its scopes" if status in (401, 403) else "see crm_error"
    return CrmRejected(f"{where} (rejected; {hint})", status_code=status, crm_error=message)


def _json_body(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
