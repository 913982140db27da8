"""How wa-bridge signs in to Salesforce: a session token, or a connected app (OAuth 2.0).

``WA_BRIDGE_CRM_AUTH``:

- ``token`` (default): ``WA_BRIDGE_CRM_TOKEN`` is a session id used as is, at
  ``WA_BRIDGE_CRM_BASE_URL`` (the org's instance URL); it is never renewed.
- ``client_credentials``: the connected app's consumer key and secret
  (``WA_BRIDGE_CRM_CLIENT_ID``, ``_CLIENT_SECRET``); the app's run-as user is the API user.
- ``jwt_bearer``: the consumer key, the user (``WA_BRIDGE_CRM_USERNAME``) and the private
  key whose certificate the app holds (``WA_BRIDGE_CRM_JWT_PRIVATE_KEY[_FILE]``).
- ``refresh_token``: consumer key, secret and a refresh token.

The OAuth flows ask ``POST <WA_BRIDGE_CRM_LOGIN_URL>/services/oauth2/token`` (the login
URL is also the JWT's audience) and send every API request to the ``instance_url`` of the
answer, so ``WA_BRIDGE_CRM_BASE_URL`` is not needed. Sessions expire (an org setting,
commonly 2 hours): a 401 ``INVALID_SESSION_ID`` gets a new token and the request is sent
once more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from pydantic import SecretStr

from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.connectors.auth import (
    OAuthAuth,
    RsaSigner,
    TokenFetch,
    client_credentials_grant,
    jwt_bearer_grant,
    refresh_token_grant,
    require,
)
from wa_bridge.connectors.http import client_for
from wa_bridge.connectors.salesforce.dialect import SALESFORCE_ERRORS

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.ext.asyncio import AsyncEngine

    from wa_bridge.settings import Settings

__all__ = ["TOKEN_PATH", "api_user_id", "salesforce_auth", "salesforce_client"]

TOKEN_PATH: Final = "/services/oauth2/token"
_LOGIN: Final = "WA_BRIDGE_CRM_LOGIN_URL"
_ID: Final = "WA_BRIDGE_CRM_CLIENT_ID"
_SECRET: Final = "WA_BRIDGE_CRM_CLIENT_SECRET"
_REFRESH: Final = "WA_BRIDGE_CRM_REFRESH_TOKEN"
_USER: Final = "WA_BRIDGE_CRM_USERNAME"
_KEY: Final = "WA_BRIDGE_CRM_JWT_PRIVATE_KEY"


def salesforce_auth(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> OAuthAuth | None:
    """The sign-in ``settings`` describe (None: the static session token). Raises
    ConfigError when a setting the chosen flow needs is missing, or the key is no RSA key."""
    fetch = _fetch(settings, clock)
    return OAuthAuth(fetch, vendor="salesforce", clock=clock) if fetch else None


def salesforce_client(
    settings: Settings, engine: AsyncEngine | None, clock: Clock = SYSTEM_CLOCK
) -> tuple[httpx.AsyncClient, OAuthAuth | None]:
    """The API client ``settings`` describe (gated, signed in) and its OAuth sign-in, if
    any. With OAuth it starts at the login URL and follows the token's instance URL."""
    auth = salesforce_auth(settings, clock)
    base_url = settings.crm_base_url or (settings.crm_login_url if auth is not None else None)
    client = client_for(
        settings, SALESFORCE_ERRORS, engine=engine, auth=auth, base_url=base_url, clock=clock
    )
    return client, auth


def _fetch(settings: Settings, clock: Clock) -> TokenFetch | None:
    flow = settings.crm_auth
    if flow == "token":
        return None
    what = f"Salesforce sign-in WA_BRIDGE_CRM_AUTH={flow}"
    needed: dict[str, str | SecretStr | None] = {
        _ID: settings.crm_client_id,
        _LOGIN: settings.crm_login_url,
    }
    if flow == "jwt_bearer":
        needed[_USER] = settings.crm_username
        needed[_KEY] = settings.crm_jwt_private_key
    else:
        needed[_SECRET] = settings.crm_client_secret
    if flow == "refresh_token":
        needed[_REFRESH] = settings.crm_refresh_token
    v = require(what, needed)
    login = v[_LOGIN].rstrip("/")
    url, timeout_s = login + TOKEN_PATH, settings.crm_timeout_s
    if flow == "client_credentials":
        return client_credentials_grant(
            url,
            client_id=v[_ID],
            client_secret=v[_SECRET],
            vendor="salesforce",
            timeout_s=timeout_s,
            clock=clock,
        )
    if flow == "refresh_token":
        return refresh_token_grant(
            url,
            client_id=v[_ID],
            client_secret=v[_SECRET],
            refresh_token=v[_REFRESH],
            vendor="salesforce",
            timeout_s=timeout_s,
            clock=clock,
        )
    return jwt_bearer_grant(
        url,
        client_id=v[_ID],
        signer=RsaSigner(v[_KEY], setting=_KEY),
        username=v[_USER],
        audience=login,
        vendor="salesforce",
        timeout_s=timeout_s,
        clock=clock,
    )


def api_user_id(auth: OAuthAuth | None) -> str | None:
    """The API user's id from the token answer's ``id`` (``…/id/<org id>/<user id>``),
    once a token was fetched; None otherwise."""
    identity = auth.token.identity if auth is not None and auth.token is not None else None
    parts = identity.rstrip("/").split("/") if identity else []
    return parts[-1] if len(parts) >= 3 and parts[-3] == "id" else None
