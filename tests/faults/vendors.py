"""What the CRM fault tests need to know of each vendor (fixtures: ``conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass(frozen=True)
class Vendor:
    name: str
    session: str  # the stand-in's session fixture
    creates: Mapping[str, str]  # label → path of each call that creates a record
    note_path: str  # the call that writes notes (refused, then replayed)
    # the stand-in's token path, when the vendor signs in with a token that expires
    token_path: str | None = None
    sign_in: Callable[[Any], dict[str, Any]] = field(default=lambda server: {})


VENDORS = {
    "hubspot": Vendor(
        "hubspot",
        "hubspot_session",
        {
            "contacts upsert": "contacts/batch/upsert",
            # tickets and notes new to the book are created with their links inline
            "tickets create": "tickets/batch/create",
            "notes create": "communications/batch/create",
        },
        "communications/batch/",
        token_path="/oauth/v1/token",
        sign_in=lambda server: {
            "crm_token": None,
            "crm_auth": "refresh_token",
            "crm_client_id": server.oauth.client_id,
            "crm_client_secret": server.oauth.client_secret,
            "crm_refresh_token": server.oauth.refresh_token,
        },
    ),
    "salesforce": Vendor(
        "salesforce",
        "salesforce_session",
        {
            "Contact upsert": "composite/sobjects/Contact",
            "Case upsert": "composite/sobjects/Case",
            "Task upsert": "composite/sobjects/Task",
        },
        "composite/sobjects/Task",
        token_path="/services/oauth2/token",
        sign_in=lambda server: {  # client credentials; the instance URL from the token
            "crm_token": None,
            "crm_base_url": None,
            "crm_auth": "client_credentials",
            "crm_login_url": server.url,
            "crm_client_id": server.oauth.client_id,
            "crm_client_secret": server.oauth.client_secret,
        },
    ),
    # a static token and no daily budget: no expiry or daily-limit test
    "rest": Vendor("rest", "rest_crm_session", {"batch": "/batch"}, "/batch"),
}


def vendors(*names: str) -> pytest.MarkDecorator:
    """Run a test once per named vendor (all three by default)."""
    return pytest.mark.parametrize("vendor", names or tuple(VENDORS), indirect=True)
