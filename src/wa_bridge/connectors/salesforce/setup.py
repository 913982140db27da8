"""``wa-bridge crm setup`` for Salesforce: the external-id fields to create in the org.

The connector upserts by these fields, so they must exist before the first event; this
lists them (creating them through the Tooling API is not built yet).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wa_bridge.connectors.base import SetupResult
from wa_bridge.connectors.salesforce.fields import EXTERNAL_IDS

if TYPE_CHECKING:
    from wa_bridge.settings import Settings

__all__ = ["external_id_fields", "set_up"]


def external_id_fields() -> list[str]:
    """``Contact.WA_Contact_Key__c (Text, External ID, Unique)``, … one line per sObject."""
    return [
        f"{sobject}.{name} (Text, External ID, Unique)" for sobject, name in EXTERNAL_IDS.items()
    ]


async def set_up(settings: Settings, dry_run: bool) -> SetupResult:
    """The fields to create by hand in Setup > Object Manager (nothing is sent)."""
    head = "connector salesforce: create these external-id fields in Setup > Object Manager:"
    return SetupResult((head, *(f"  {line}" for line in external_id_fields())))
