"""Contract servers: local stand-ins for the CRMs that check every request they get."""

from connectors.servers.base import ContractServer, Fault, RecordedRequest, Reply
from connectors.servers.hubspot import HubSpotServer
from connectors.servers.rest_crm import RestCrmServer

__all__ = [
    "ContractServer",
    "Fault",
    "HubSpotServer",
    "RecordedRequest",
    "Reply",
    "RestCrmServer",
]
