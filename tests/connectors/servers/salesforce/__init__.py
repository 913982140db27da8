"""The Salesforce contract server (see ``server.py``)."""

from .oauth import jwt_assertion, make_key_pair
from .server import SalesforceServer

__all__ = ["SalesforceServer", "jwt_assertion", "make_key_pair"]
