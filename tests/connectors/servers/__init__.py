"""Contract servers: local stand-ins for the CRMs that check every request they get."""

from .base import ContractServer, Fault, ManualClock, RecordedRequest, Reply
from .hubspot import HubSpotServer
from .rest_crm import RestCrmServer
from .salesforce import SalesforceServer

__all__ = [
    "ContractServer",
    "Fault",
    "HubSpotServer",
    "ManualClock",
    "RecordedRequest",
    "Reply",
    "RestCrmServer",
    "SalesforceServer",
]
