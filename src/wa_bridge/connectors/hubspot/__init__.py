"""HubSpot: the connector, its property names (read by writing and by setup), sign-in, setup."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from wa_bridge.connectors.base import Vendor, Wiring
from wa_bridge.connectors.gate import quota_key
from wa_bridge.connectors.hubspot.auth import hubspot_client
from wa_bridge.connectors.hubspot.connector import HubSpotConnector
from wa_bridge.connectors.hubspot.merge import HUBSPOT_MERGER
from wa_bridge.connectors.hubspot.properties import (
    HubSpotOptions,
    custom_property,
    outcome_property,
    property_value,
)
from wa_bridge.connectors.hubspot.setup import set_up

if TYPE_CHECKING:
    from wa_bridge.settings import Settings

__all__ = [
    "VENDOR",
    "HubSpotConnector",
    "HubSpotOptions",
    "custom_property",
    "outcome_property",
    "property_value",
]


def _build(settings: Settings, wiring: Wiring) -> HubSpotConnector:
    return HubSpotConnector(
        hubspot_client(settings, wiring.engine, wiring.clock),
        HubSpotOptions.from_settings(settings),
        match_order=wiring.match_order,
        instance=quota_key(settings),
    )


VENDOR: Final = Vendor(build=_build, set_up=set_up, merger=HUBSPOT_MERGER)
