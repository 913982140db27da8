"""CRM connectors: the :class:`CrmConnector` seam, the factory that builds one, and setup.

Each CRM plugs in as a :class:`~wa_bridge.connectors.base.Vendor` (its module's ``VENDOR``):
the factory and ``wa-bridge crm setup`` reach it by the ``connector`` setting alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.connectors import base
from wa_bridge.connectors.base import *  # noqa: F403  the seam, re-exported as base lists it
from wa_bridge.connectors.base import CrmConnector, SetupResult, Vendor, Wiring
from wa_bridge.errors import ConfigError
from wa_bridge.operations import DEFAULT_MATCH_ORDER, MatchRule

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from wa_bridge.settings import Settings

__all__ = ["build_connector", "deals_enabled", "set_up_crm"]
__all__ += base.__all__


def build_connector(
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    match_order: Sequence[MatchRule] = DEFAULT_MATCH_ORDER,
    clock: Clock = SYSTEM_CLOCK,
) -> CrmConnector:
    """The connector ``settings.connector`` names; the caller closes it with ``aclose()``.

    ``engine`` is the state database: the built-in ``sql`` CRM's tables, and for the HTTP
    CRMs the quota their gate shares with every other worker (``crm_quota``; None: this
    process only); ``match_order`` the mapping's ``match:`` (how HubSpot and Salesforce
    find a contact's existing record). Raises ConfigError when a setting the connector
    needs is missing.
    """
    wiring = Wiring(engine=engine, match_order=tuple(match_order), clock=clock)
    return _vendor(settings.connector).build(settings, wiring)


def deals_enabled(settings: Settings) -> bool:
    """Whether the mapping's deals (``upsert_deal``) go to the CRM: ``crm_deals``, else on
    for the SQL CRM only. Raises ConfigError for the REST CRM, whose contract has none."""
    enabled = settings.crm_deals if settings.crm_deals is not None else settings.connector == "sql"
    if enabled and settings.connector == "rest":
        raise ConfigError(
            "WA_BRIDGE_CRM_DEALS: the REST CRM contract has no deals; unset it for connector rest"
        )
    return enabled


async def set_up_crm(
    settings: Settings, *, dry_run: bool = False, engine: AsyncEngine | None = None
) -> SetupResult:
    """Prepare the CRM ``settings.connector`` names for the connector (``wa-bridge crm setup``).

    Creates what is missing (nothing with ``dry_run``) and reports each item. Its requests
    wait for the CRM's gate, shared through ``engine``'s database (the state store) with
    every worker. Raises :mod:`wa_bridge.errors` errors: ConfigError for a missing setting,
    CRM errors when the CRM cannot be reached or refuses the token, CrmQuotaExhausted when
    its daily budget is spent.
    """
    return await _vendor(settings.connector).set_up(settings, dry_run, engine)


def _vendor(name: str) -> Vendor:
    # Imported on demand: a deployment loads only its own CRM's code (the sql CRM needs
    # SQLAlchemy's tables, HubSpot's setup the mapping engine).
    if name == "sql":
        from wa_bridge.connectors import sql

        return sql.VENDOR
    if name == "rest":
        from wa_bridge.connectors import rest

        return rest.VENDOR
    if name == "hubspot":
        from wa_bridge.connectors import hubspot

        return hubspot.VENDOR
    if name == "salesforce":
        from wa_bridge.connectors import salesforce

        return salesforce.VENDOR
    raise ConfigError(f"WA_BRIDGE_CONNECTOR: no connector named {name!r}")
