"""CRM connectors: the :class:`CrmConnector` seam and the factory that picks one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wa_bridge.connectors.base import CrmConnector, CrmResult
from wa_bridge.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from wa_bridge.settings import Settings

__all__ = ["CrmConnector", "CrmResult", "build_connector"]


def build_connector(settings: Settings, *, engine: AsyncEngine | None = None) -> CrmConnector:
    """The connector ``settings.connector`` names; the caller closes it with ``aclose()``.

    ``engine`` is the state database, used by the built-in ``sql`` CRM tables. Raises
    ConfigError when a setting the connector needs is missing.
    """
    if settings.connector == "sql":
        # Lazy: only the sql CRM needs SQLAlchemy and the store's tables.
        from wa_bridge.connectors.sql import SqlCrmConnector

        target = engine if engine is not None else settings.database_url
        if target is None:
            raise ConfigError("WA_BRIDGE_DATABASE_URL is required for connector sql")
        return SqlCrmConnector(target)
    from wa_bridge.connectors.http import build_client

    if not settings.crm_base_url:
        raise ConfigError(f"WA_BRIDGE_CRM_BASE_URL is required for connector {settings.connector}")
    token = settings.crm_token.get_secret_value() if settings.crm_token else None
    client = build_client(
        settings.crm_base_url,
        token=token,
        timeout_s=settings.crm_timeout_s,
        vendor=settings.connector,
    )
    if settings.connector == "rest":
        from wa_bridge.connectors.rest import RestConnector

        return RestConnector(client)
    if settings.connector == "salesforce":
        from wa_bridge.connectors.salesforce import SalesforceConnector, SalesforceOptions

        return SalesforceConnector(
            client, SalesforceOptions(api_version=settings.salesforce_api_version)
        )
    from wa_bridge.connectors.hubspot import HubSpotConnector, HubSpotOptions

    options = HubSpotOptions(
        api_style=settings.hubspot_api_style, note_object=settings.hubspot_note_object
    )
    return HubSpotConnector(client, options)
