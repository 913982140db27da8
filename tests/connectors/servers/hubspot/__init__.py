"""The HubSpot contract server (see ``server.py``)."""

from .errors import hubspot_error
from .server import HubSpotServer

__all__ = ["HubSpotServer", "hubspot_error"]
