"""Sign-in that lasts: HubSpot OAuth refresh, Salesforce client credentials and JWT bearer.

Against the stand-ins' token endpoints, with their clocks moved by hand where expiry
matters: tokens are renewed before they expire and once on a 401, the API's address comes
from the token answer, a refused sign-in says which settings to check, and no credential
reaches a log line or an error message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from connectors.servers import HubSpotServer, SalesforceServer
from connectors.servers import ManualClock as ServerClock
from connectors.servers.salesforce import make_key_pair
from wa_bridge.clock import ManualClock
from wa_bridge.connectors import build_connector
from wa_bridge.connectors.auth import RsaSigner
from wa_bridge.connectors.http import send
from wa_bridge.connectors.hubspot.auth import hubspot_client
from wa_bridge.connectors.hubspot.dialect import HUBSPOT_ERRORS
from wa_bridge.connectors.salesforce.auth import api_user_id, salesforce_client
from wa_bridge.connectors.salesforce.dialect import SALESFORCE_ERRORS
from wa_bridge.errors import ConfigError, CrmRejected
from wa_bridge.operations import CrmOperation
from wa_bridge.settings import Settings, load_settings

T0 = datetime(2026, 3, 10, 9, tzinfo=UTC)
CONTACTS = "/crm/v3/objects/contacts"
QUERY = "/services/data/v61.0/query"


def _hubspot_oauth(server: HubSpotServer, **changes: object) -> Settings:
    app = server.oauth
    values: dict[str, object] = {
        "connector": "hubspot",
        "crm_base_url": server.url,
        "crm_auth": "refresh_token",
        "crm_client_id": app.client_id,
        "crm_client_secret": app.client_secret,
        "crm_refresh_token": app.refresh_token,
        **changes,
    }
    return Settings(**values)  # type: ignore[arg-type]  # test values, validated


def _salesforce_oauth(server: SalesforceServer, flow: str, **changes: object) -> Settings:
    app = server.oauth
    values: dict[str, object] = {
        "connector": "salesforce",
        "crm_auth": flow,
        "crm_login_url": server.url,
        "crm_client_id": app.client_id,
        **changes,
    }
    if flow == "client_credentials":
        values.setdefault("crm_client_secret", app.client_secret)
    if flow == "jwt_bearer":
        values.setdefault("crm_username", app.username)
        values.setdefault("crm_jwt_private_key", app.private_key_pem)
    return Settings(**values)  # type: ignore[arg-type]  # test values, validated


def _token_requests(server: HubSpotServer | SalesforceServer) -> int:
    return sum(1 for r in server.requests if r.auth_endpoint)


def _contact(key: str) -> CrmOperation:
    return CrmOperation(
        kind="upsert_contact",
        fields={"phone_e164": "+15550100001", "name": "Ana"},
        event_id=f"ev-{key}",
        index=0,
        contact_key=key,
    )


# --- HubSpot: an OAuth app's refresh token ----------------------------------------------
async def test_hubspot_token_is_refreshed_before_it_expires_and_on_401(
    hubspot_server: HubSpotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    clock, server_clock = ManualClock(T0), ServerClock()
    hubspot_server.clock = server_clock
    hubspot_server.oauth.access_token_lifetime_s = 600

    def advance(seconds: float) -> None:
        clock.advance(seconds)
        server_clock.advance(seconds)

    async with hubspot_client(_hubspot_oauth(hubspot_server), None, clock) as client:

        async def list_contacts() -> int:
            answer = await send(client, "GET", CONTACTS, dialect=HUBSPOT_ERRORS, action="list")
            return answer.status_code

        assert await list_contacts() == 200
        assert _token_requests(hubspot_server) == 1
        advance(500)  # 100 s left: still good
        assert await list_contacts() == 200 and _token_requests(hubspot_server) == 1
        advance(50)  # inside the last minute: renewed before sending
        assert await list_contacts() == 200 and _token_requests(hubspot_server) == 2
        assert all(r.status == 200 for r in hubspot_server.requests if not r.auth_endpoint)

        hubspot_server.expire_tokens()  # revoked early: the 401 gets a new token, once
        assert await list_contacts() == 200 and _token_requests(hubspot_server) == 3
        statuses = [r.status for r in hubspot_server.requests if not r.auth_endpoint]
        assert statuses[-2:] == [401, 200]

    tokens = {
        r.headers["authorization"].removeprefix("Bearer ")
        for r in hubspot_server.requests
        if not r.auth_endpoint
    }
    out = capsys.readouterr()
    logged = out.out + out.err
    assert "crm_token_renewed" in logged
    secrets = [*tokens, hubspot_server.oauth.client_secret, hubspot_server.oauth.refresh_token]
    assert not [s for s in secrets if s in logged]


async def test_hubspot_refused_sign_in_names_the_settings_not_the_secret(
    hubspot_server: HubSpotServer,
) -> None:
    settings = _hubspot_oauth(hubspot_server, crm_client_secret="not-the-secret")
    async with hubspot_client(settings, None) as client:
        with pytest.raises(CrmRejected) as caught:
            await send(client, "GET", CONTACTS, dialect=HUBSPOT_ERRORS, action="list")
    error = caught.value
    assert error.status_code == 400
    assert error.crm_error.startswith("BAD_CLIENT_SECRET")
    assert "WA_BRIDGE_CRM_CLIENT_ID" in str(error) and "sign-in refused" in str(error)
    assert "not-the-secret" not in str(error) + error.crm_error
    assert hubspot_server.total() == 0  # no API request without a token


def test_hubspot_oauth_needs_its_settings() -> None:
    settings = Settings(connector="hubspot", crm_base_url="https://api.hubapi.com")
    partial = settings.model_copy(update={"crm_auth": "refresh_token", "crm_client_id": "x"})
    with pytest.raises(ConfigError) as caught:
        build_connector(partial)
    assert "WA_BRIDGE_CRM_CLIENT_SECRET" in str(caught.value)
    assert "WA_BRIDGE_CRM_REFRESH_TOKEN" in str(caught.value)
    wrong = settings.model_copy(update={"crm_auth": "jwt_bearer"})
    with pytest.raises(ConfigError, match="not a HubSpot sign-in"):
        build_connector(wrong)


# --- Salesforce: a connected app --------------------------------------------------------
async def test_salesforce_client_credentials_find_the_instance_in_the_token_answer(
    salesforce_server: SalesforceServer,
) -> None:
    instance = httpx.URL(salesforce_server.url)
    login = str(instance.copy_with(host="localhost"))  # another name for the login site
    settings = _salesforce_oauth(salesforce_server, "client_credentials", crm_login_url=login)
    assert settings.crm_base_url is None
    connector = build_connector(settings)
    try:
        await connector.apply([_contact("c-cc-1")])
    finally:
        await connector.aclose()
    assert salesforce_server.find("Contact", "WA_Contact_Key__c", "c-cc-1") is not None
    token = [r for r in salesforce_server.requests if r.auth_endpoint]
    api = [r for r in salesforce_server.requests if not r.auth_endpoint]
    assert token[0].headers["host"] == f"localhost:{instance.port}"
    assert api and {r.headers["host"] for r in api} == {f"127.0.0.1:{instance.port}"}
    assert token[0].body["grant_type"] == "client_credentials"


async def test_salesforce_expired_session_gets_one_new_token_then_the_401_is_real(
    salesforce_server: SalesforceServer,
) -> None:
    settings = _salesforce_oauth(salesforce_server, "client_credentials")
    client, auth = salesforce_client(settings, None)
    async with client:

        async def query() -> int:
            answer = await send(
                client,
                "GET",
                QUERY,
                dialect=SALESFORCE_ERRORS,
                action="query",
                params={"q": "SELECT Id FROM Contact"},
            )
            return answer.status_code

        assert await query() == 200
        assert api_user_id(auth) == salesforce_server.api_user_id
        salesforce_server.expire_sessions()
        assert await query() == 200
        assert _token_requests(salesforce_server) == 2
        codes = [r.status for r in salesforce_server.requests if not r.auth_endpoint]
        assert codes == [200, 401, 200]

        salesforce_server.oauth.session_lifetime_s = 0  # every new session is dead at once
        salesforce_server.expire_sessions()
        with pytest.raises(CrmRejected) as caught:
            await query()
        assert caught.value.status_code == 401
        assert caught.value.crm_error.startswith("INVALID_SESSION_ID")
        assert _token_requests(salesforce_server) == 3  # renewed once for that request


async def test_salesforce_jwt_bearer_signs_in_as_the_user(
    salesforce_server: SalesforceServer,
) -> None:
    connector = build_connector(_salesforce_oauth(salesforce_server, "jwt_bearer"))
    try:
        await connector.apply([_contact("c-jwt-1")])
    finally:
        await connector.aclose()
    assert salesforce_server.find("Contact", "WA_Contact_Key__c", "c-jwt-1") is not None
    (token,) = [r for r in salesforce_server.requests if r.auth_endpoint]
    assert token.body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert token.status == 200


async def test_salesforce_jwt_signed_with_an_untrusted_key_is_refused(
    salesforce_server: SalesforceServer,
) -> None:
    other_key, _ = make_key_pair()
    settings = _salesforce_oauth(salesforce_server, "jwt_bearer", crm_jwt_private_key=other_key)
    connector = build_connector(settings)
    try:
        with pytest.raises(CrmRejected) as caught:
            await connector.apply([_contact("c-jwt-2")])
    finally:
        await connector.aclose()
    assert caught.value.crm_error == "invalid_grant: invalid assertion: bad signature"
    assert "PRIVATE KEY" not in str(caught.value)


def test_the_jwt_key_comes_from_a_file_and_must_be_rsa(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, _ = make_key_pair()
    key_file = tmp_path / "salesforce.key"
    key_file.write_text(private)
    monkeypatch.setenv("WA_BRIDGE_CRM_JWT_PRIVATE_KEY_FILE", str(key_file))
    settings = load_settings()
    assert settings.crm_jwt_private_key is not None
    assert "PRIVATE KEY" not in repr(settings)
    RsaSigner(settings.crm_jwt_private_key.get_secret_value(), setting="key")
    with pytest.raises(ConfigError, match="WA_BRIDGE_CRM_JWT_PRIVATE_KEY: not an unencrypted"):
        RsaSigner("-----BEGIN NOTHING-----", setting="WA_BRIDGE_CRM_JWT_PRIVATE_KEY")


def test_salesforce_flows_name_what_they_miss() -> None:
    jwt = Settings(connector="salesforce", crm_auth="jwt_bearer", crm_client_id="key")
    with pytest.raises(ConfigError) as caught:
        build_connector(jwt)
    for name in ("CRM_LOGIN_URL", "CRM_USERNAME", "CRM_JWT_PRIVATE_KEY"):
        assert f"WA_BRIDGE_{name}" in str(caught.value)
    static = Settings(connector="salesforce", crm_token="session")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="WA_BRIDGE_CRM_BASE_URL"):
        build_connector(static)
