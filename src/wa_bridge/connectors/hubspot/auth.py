"""How wa-bridge signs in to HubSpot: a private app's static token, or an OAuth app.

``WA_BRIDGE_CRM_AUTH=token`` (default): ``WA_BRIDGE_CRM_TOKEN`` is the private app's
access token, sent as is. ``refresh_token``: an OAuth app installed in the portal;
``WA_BRIDGE_CRM_CLIENT_ID``, ``_CLIENT_SECRET`` and ``_REFRESH_TOKEN`` get access tokens
from ``POST /oauth/v1/token`` (at ``WA_BRIDGE_CRM_LOGIN_URL``, else the API's base URL),
renewed before ``expires_in`` runs out and on a 401.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.connectors.auth import OAuthAuth, refresh_token_grant, require
from wa_bridge.connectors.http import client_for
from wa_bridge.connectors.hubspot.dialect import HUBSPOT_ERRORS
from wa_bridge.errors import ConfigError

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.ext.asyncio import AsyncEngine

    from wa_bridge.settings import Settings

__all__ = ["TOKEN_PATH", "hubspot_auth", "hubspot_client"]

TOKEN_PATH: Final = "/oauth/v1/token"


def hubspot_client(
    settings: Settings, engine: AsyncEngine | None, clock: Clock = SYSTEM_CLOCK
) -> httpx.AsyncClient:
    """The API client ``settings`` describe: signed in, and gated by the portal's quota
    (shared through ``engine``'s database)."""
    auth = hubspot_auth(settings, clock)
    return client_for(settings, HUBSPOT_ERRORS, engine=engine, auth=auth, clock=clock)


def hubspot_auth(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> OAuthAuth | None:
    """The sign-in ``settings`` describe (None: the static token). Raises ConfigError
    when a setting the chosen sign-in needs is missing."""
    if settings.crm_auth == "token":
        return None
    if settings.crm_auth != "refresh_token":
        raise ConfigError(
            f"WA_BRIDGE_CRM_AUTH={settings.crm_auth} is not a HubSpot sign-in; "
            "use token (a private app) or refresh_token (an OAuth app)"
        )
    v = require(
        "HubSpot OAuth (WA_BRIDGE_CRM_AUTH=refresh_token)",
        {
            "WA_BRIDGE_CRM_CLIENT_ID": settings.crm_client_id,
            "WA_BRIDGE_CRM_CLIENT_SECRET": settings.crm_client_secret,
            "WA_BRIDGE_CRM_REFRESH_TOKEN": settings.crm_refresh_token,
            "WA_BRIDGE_CRM_BASE_URL": settings.crm_login_url or settings.crm_base_url,
        },
    )
    fetch = refresh_token_grant(
        v["WA_BRIDGE_CRM_BASE_URL"].rstrip("/") + TOKEN_PATH,
        client_id=v["WA_BRIDGE_CRM_CLIENT_ID"],
        client_secret=v["WA_BRIDGE_CRM_CLIENT_SECRET"],
        refresh_token=v["WA_BRIDGE_CRM_REFRESH_TOKEN"],
        vendor="hubspot",
        timeout_s=settings.crm_timeout_s,
        clock=clock,
    )
    return OAuthAuth(fetch, vendor="hubspot", clock=clock)
