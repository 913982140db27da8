"""Salesforce field names: the one home read by the connector and by setup.

A mapped field ``x`` is written to the custom field ``WA_X__c`` unless Salesforce has a
standard field for it (``MobilePhone``, ``Email``, a Case's ``Subject``, a Task's
``Description``). Records are upserted by the external-id fields of :data:`EXTERNAL_IDS`,
which must exist in the org (``wa-bridge crm setup`` lists them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from wa_bridge.connectors._naming import FieldNames, consent_names
from wa_bridge.operations import FieldValue

__all__ = [
    "CASE_KEY_REF",
    "EXTERNAL_IDS",
    "SObject",
    "case_field",
    "consent_fields",
    "contact_field",
    "custom_field",
    "deal_field",
    "outcome_field",
    "task_field",
]

SObject = Literal["Contact", "Case", "Opportunity", "Task"]

# sObject → its external-id field (Text, External ID, Unique), in write order.
EXTERNAL_IDS: Final[Mapping[SObject, str]] = {
    "Contact": "WA_Contact_Key__c",
    "Case": "WA_Case_Key__c",
    "Opportunity": "WA_Deal_Key__c",
    "Task": "WA_Note_Key__c",
}
# The case an Opportunity is the sale of (Opportunity has no Case lookup): its key.
CASE_KEY_REF: Final = "WA_Case_Key_Ref__c"


def custom_field(name: str) -> str:
    """``bsuid`` → ``WA_Bsuid__c``; ``ctwa_clid`` → ``WA_Ctwa_Clid__c``."""
    return "WA_" + "_".join(part.capitalize() for part in name.split("_") if part) + "__c"


# The field each field of an operation is written to: Salesforce's standard field where
# it has one for the field, else the field's custom field.
contact_field: Final = FieldNames(
    custom_field, {"phone_e164": "MobilePhone", "email": "Email", "name": "LastName"}
)
# an upsert_case's ``status`` is translated to one of the org's Case statuses
case_field: Final = FieldNames(
    custom_field, {"subject": "Subject", "reason": "Reason", "status": "Status"}
)
# ``stage`` is translated, and ``closed_at`` is written as a date
deal_field: Final = FieldNames(
    custom_field,
    {"name": "Name", "stage": "StageName", "amount": "Amount", "closed_at": "CloseDate"},
)


def task_field(name: str, *, is_status_only: bool) -> str:
    """The Task field an ``add_note`` field is written to; a status's time is kept apart
    from the message's."""
    if name == "body":
        return "Description"
    if name == "status":
        return custom_field("message_status")
    if name == "occurred_at":
        return custom_field("status_at" if is_status_only else "occurred_at")
    return custom_field(name)


def outcome_field(name: str) -> str:
    """The Case (or Contact) field a ``record_outcome`` field is written to."""
    return custom_field(name if name == "outcome" else f"outcome_{name}")


def consent_fields(fields: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    """A ``set_consent``'s fields by Contact field: the status, its time and its evidence
    (``WA_Whatsapp_Marketing_Consent__c``, ``..._At__c``, ``..._Evidence__c``)."""
    return consent_names(fields, custom_field)
