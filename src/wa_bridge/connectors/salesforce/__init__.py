"""Salesforce: the connector, its field names (read by writing and by setup), sign-in, setup."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from wa_bridge.connectors.base import Vendor, Wiring
from wa_bridge.connectors.gate import quota_key
from wa_bridge.connectors.salesforce.auth import salesforce_client
from wa_bridge.connectors.salesforce.connector import (
    DEFAULT_DEAL_STAGES,
    SalesforceConnector,
    SalesforceOptions,
)
from wa_bridge.connectors.salesforce.fields import EXTERNAL_IDS, custom_field
from wa_bridge.connectors.salesforce.merge import SALESFORCE_MERGER
from wa_bridge.connectors.salesforce.setup import set_up

if TYPE_CHECKING:
    from wa_bridge.settings import Settings

__all__ = ["EXTERNAL_IDS", "VENDOR", "SalesforceConnector", "SalesforceOptions", "custom_field"]


def _build(settings: Settings, wiring: Wiring) -> SalesforceConnector:
    options = SalesforceOptions(
        api_version=settings.salesforce_api_version,
        deal_stages={**DEFAULT_DEAL_STAGES, **settings.crm_deal_stages},
    )
    client, _ = salesforce_client(settings, wiring.engine, wiring.clock)
    return SalesforceConnector(
        client, options, match_order=wiring.match_order, instance=quota_key(settings)
    )


VENDOR: Final = Vendor(build=_build, set_up=set_up, merger=SALESFORCE_MERGER)
