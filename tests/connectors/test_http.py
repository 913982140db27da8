"""The error-mapping boundary: every httpx exception and CRM status lands in our tree."""

from __future__ import annotations

import email.utils
import logging

import httpx
import pytest

from connectors.servers import HubSpotServer
from wa_bridge.connectors.http import (
    EXCEPTION_MAP,
    ErrorDialect,
    build_client,
    client_for,
    crm_error,
    item_error,
    parse_retry_after,
    send,
)
from wa_bridge.connectors.hubspot.dialect import HUBSPOT_ERRORS
from wa_bridge.connectors.rest import REST_ERRORS
from wa_bridge.connectors.salesforce.dialect import SALESFORCE_ERRORS
from wa_bridge.errors import (
    ConfigError,
    CrmRateLimited,
    CrmRejected,
    CrmUnavailable,
    PermanentError,
    RetryableError,
)
from wa_bridge.log import configure_logging
from wa_bridge.operations import CrmOperation
from wa_bridge.settings import Settings

REQUEST = httpx.Request("POST", "http://crm.test/x")
DIALECTS: dict[str, ErrorDialect] = {
    "rest": REST_ERRORS,
    "hubspot": HUBSPOT_ERRORS,
    "salesforce": SALESFORCE_ERRORS,
}


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def _status(
    status: int, *, json: object = None, headers: dict[str, str] | None = None
) -> httpx.HTTPStatusError:
    response = httpx.Response(status, json=json, headers=headers, request=REQUEST)
    return httpx.HTTPStatusError("status", request=REQUEST, response=response)


def test_every_httpx_exception_is_mapped() -> None:
    httpx_classes = {
        c for c in _all_subclasses(httpx.HTTPError) if c.__module__.startswith("httpx")
    }
    unmapped = sorted(
        c.__name__ for c in httpx_classes | {httpx.HTTPError} if c not in EXCEPTION_MAP
    )
    assert not unmapped, f"httpx exceptions nobody mapped: {unmapped}"


@pytest.mark.parametrize("cls", sorted(EXCEPTION_MAP, key=lambda c: c.__name__))
def test_each_mapped_exception_becomes_its_class(cls: type[httpx.HTTPError]) -> None:
    if cls is httpx.HTTPStatusError:
        exc: httpx.HTTPError = _status(400)
    elif issubclass(cls, httpx.RequestError):
        exc = cls("boom", request=REQUEST)
    else:
        exc = cls("boom")
    error = crm_error(exc, dialect=DIALECTS["rest"], action="upsert_contact")
    assert type(error) is EXCEPTION_MAP[cls]


def test_timeouts_and_network_errors_are_retryable() -> None:
    for cls in (httpx.ReadTimeout, httpx.ConnectError, httpx.RemoteProtocolError):
        error = crm_error(cls("x", request=REQUEST), dialect=DIALECTS["hubspot"], action="a")
        assert isinstance(error, CrmUnavailable) and isinstance(error, RetryableError)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, CrmRejected),
        (401, CrmRejected),
        (403, CrmRejected),
        (404, CrmRejected),
        (409, CrmRejected),
        (408, CrmUnavailable),
        (429, CrmRateLimited),
        (500, CrmUnavailable),
        (502, CrmUnavailable),
        (503, CrmUnavailable),
    ],
)
def test_status_codes(status: int, expected: type[Exception]) -> None:
    for dialect in DIALECTS.values():
        error = crm_error(_status(status), dialect=dialect, action="a")
        assert type(error) is expected


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30.0)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_429_uses_retry_after_then_hubspot_interval() -> None:
    with_header = crm_error(
        _status(429, headers={"Retry-After": "3"}), dialect=DIALECTS["rest"], action="a"
    )
    assert isinstance(with_header, CrmRateLimited) and with_header.retry_after_s == 3.0
    interval = {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}
    hubspot = crm_error(_status(429, headers=interval), dialect=DIALECTS["hubspot"], action="a")
    assert isinstance(hubspot, CrmRateLimited) and hubspot.retry_after_s == 10.0
    plain = crm_error(_status(429, headers=interval), dialect=DIALECTS["rest"], action="a")
    assert isinstance(plain, CrmRateLimited) and plain.retry_after_s is None


def test_salesforce_request_limit_exceeded_is_a_rate_limit() -> None:
    body = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    error = crm_error(_status(403, json=body), dialect=DIALECTS["salesforce"], action="a")
    assert isinstance(error, CrmRateLimited)
    other = [{"message": "no access", "errorCode": "INSUFFICIENT_ACCESS"}]
    refused = crm_error(_status(403, json=other), dialect=DIALECTS["salesforce"], action="a")
    assert isinstance(refused, CrmRejected) and isinstance(refused, PermanentError)
    assert refused.crm_error == "INSUFFICIENT_ACCESS: no access"


def test_crm_messages_are_extracted_per_vendor() -> None:
    hubspot = {
        "status": "error",
        "message": "Property values were not valid",
        "correlationId": "x",
        "category": "VALIDATION_ERROR",
        "errors": [{"message": "bad phone", "in": "phone"}],
    }
    error = crm_error(_status(400, json=hubspot), dialect=DIALECTS["hubspot"], action="a")
    assert isinstance(error, CrmRejected)
    assert error.crm_error == (
        "VALIDATION_ERROR: Property values were not valid; bad phone (in phone)"
    )
    salesforce = [{"message": "No such column", "errorCode": "INVALID_FIELD", "fields": ["Foo__c"]}]
    error = crm_error(_status(400, json=salesforce), dialect=DIALECTS["salesforce"], action="a")
    assert isinstance(error, CrmRejected)
    assert error.crm_error == "INVALID_FIELD: No such column [Foo__c]"
    rest = {"error": {"code": "validation_error", "message": "too long", "field": "name"}}
    error = crm_error(_status(422, json=rest), dialect=DIALECTS["rest"], action="a")
    assert isinstance(error, CrmRejected) and error.status_code == 422
    assert error.crm_error == "validation_error: too long (field name)"
    text = httpx.Response(400, text="plain failure", request=REQUEST)
    error = crm_error(
        httpx.HTTPStatusError("s", request=REQUEST, response=text),
        dialect=DIALECTS["rest"],
        action="a",
    )
    assert isinstance(error, CrmRejected) and error.crm_error == "plain failure"


def test_error_messages_carry_no_token() -> None:
    error = crm_error(
        _status(401, json={"message": "nope"}), dialect=DIALECTS["hubspot"], action="a"
    )
    assert "Bearer" not in str(error)


async def test_client_sets_all_four_timeouts_and_bearer() -> None:
    client = build_client("http://crm.test", token="t0k", timeout_s=2.5, vendor="rest")
    try:
        t = client.timeout
        assert (t.connect, t.read, t.write, t.pool) == (2.5, 2.5, 2.5, 2.5)
        assert client.headers["Authorization"] == "Bearer t0k"
    finally:
        await client.aclose()


def test_bad_base_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        build_client("ftp://crm.test", token=None, timeout_s=1, vendor="rest")


async def test_httpx_does_not_log_each_request_with_its_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # CLI commands (and the worker) used to print "HTTP Request: POST https://…?q=… 200"
    # at INFO for every CRM call; a URL may hold a SOQL query's e-mail or a key.
    configure_logging()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx").setLevel(logging.NOTSET)  # what caplog.set_level left
    configure_logging()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={})

    transport = httpx.MockTransport(answer)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("http://crm.test/query?q=SELECT+Id+FROM+Contact")
    assert [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))] == []


def test_a_missing_field_says_run_crm_setup() -> None:
    # The worker's first refusal for a property or field the CRM lacks must tell the
    # operator what to do; it travels in the error message, so the dead letter has it.
    missing = {
        "status": "error",
        "message": 'Property values were not valid: [{"error":"PROPERTY_DOESNT_EXIST"}]',
        "category": "VALIDATION_ERROR",
        "errors": [
            {"message": 'Property "wa_bsuid" does not exist', "code": "PROPERTY_DOESNT_EXIST"}
        ],
    }
    error = crm_error(_status(400, json=missing), dialect=DIALECTS["hubspot"], action="a")
    assert isinstance(error, CrmRejected) and "run `wa-bridge crm setup`" in str(error)
    other = {"status": "error", "message": "bad phone", "category": "VALIDATION_ERROR"}
    plain = crm_error(_status(400, json=other), dialect=DIALECTS["hubspot"], action="a")
    assert "crm setup" not in str(plain) and "see crm_error" in str(plain)

    field = [{"message": "No such column 'WA_Bsuid__c'", "errorCode": "INVALID_FIELD"}]
    error = crm_error(_status(400, json=field), dialect=DIALECTS["salesforce"], action="a")
    assert "run `wa-bridge crm setup`" in str(error)
    item = [{"statusCode": "INVALID_FIELD_FOR_INSERT_UPDATE", "message": "read-only"}]
    operation = CrmOperation(kind="upsert_contact", fields={}, event_id="e-1", index=0)
    refused = item_error(
        DIALECTS["salesforce"], operation, status=400, body=item, what="refused in upsert"
    )
    assert "run `wa-bridge crm setup`" in str(refused)


async def test_a_gated_client_still_uses_the_environments_proxy(
    hubspot_server: HubSpotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client with a transport of its own loses httpx's HTTP(S)_PROXY handling; the
    # gate's transport must keep it (CRMs are often reached through a company proxy).
    monkeypatch.setenv("HTTP_PROXY", hubspot_server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    settings = Settings(connector="rest", crm_base_url="http://crm.invalid", crm_token="t")  # type: ignore[arg-type]
    async with client_for(settings, DIALECTS["rest"]) as client:
        with pytest.raises(CrmRejected):
            await send(client, "GET", "/contacts/c-1", dialect=DIALECTS["rest"], action="read")
    (through_proxy,) = hubspot_server.requests
    assert through_proxy.path == "http://crm.invalid/contacts/c-1"
    hubspot_server.reset()  # the stand-in is no proxy: that request broke its contract
