"""Contract servers: local stand-ins for the CRMs that check every request they get."""

from connectors.servers.base import ContractServer, Fault, RecordedRequest, Reply
from connectors.servers.hubspot import HubSpotServer
from connectors.servers.rest_crm import RestCrmServer
from connectors.servers.salesforce import SalesforceServer

__all__ = [
    "ContractServer",
    "Fault",
    "HubSpotServer",
    "RecordedRequest",
    "Reply",
    "RestCrmServer",
    "SalesforceServer",
]
