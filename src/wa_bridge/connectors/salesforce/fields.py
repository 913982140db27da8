"""Salesforce field names: the one home read by the connector and by setup.

A mapped field ``x`` is written to the custom field ``WA_X__c`` unless Salesforce has a
standard field for it (``MobilePhone``, ``Email``, a Case's ``Subject``, a Task's
``Description``). Records are upserted by the external-id fields of :data:`EXTERNAL_IDS`,
which must exist in the org (``wa-bridge crm setup`` lists them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from wa_bridge.operations import FieldValue

__all__ = [
    "CASE_FIELDS",
    "CASE_KEY_REF",
    "CONTACT_FIELDS",
    "EXTERNAL_IDS",
    "OPPORTUNITY_FIELDS",
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

CONTACT_FIELDS: Final[Mapping[str, str]] = {
    "phone_e164": "MobilePhone",
    "email": "Email",
    "name": "LastName",
}
CASE_FIELDS: Final[Mapping[str, str]] = {"subject": "Subject", "reason": "Reason"}
# sObject → its external-id field (Text, External ID, Unique), in write order.
EXTERNAL_IDS: Final[Mapping[SObject, str]] = {
    "Contact": "WA_Contact_Key__c",
    "Case": "WA_Case_Key__c",
    "Opportunity": "WA_Deal_Key__c",
    "Task": "WA_Note_Key__c",
}
# upsert_deal fields Opportunity has a standard field for (``stage`` is translated, and
# ``closed_at`` is written as a date).
OPPORTUNITY_FIELDS: Final[Mapping[str, str]] = {
    "name": "Name",
    "stage": "StageName",
    "amount": "Amount",
    "closed_at": "CloseDate",
}
# The case an Opportunity is the sale of (Opportunity has no Case lookup): its key.
CASE_KEY_REF: Final = "WA_Case_Key_Ref__c"


def custom_field(name: str) -> str:
    """``bsuid`` → ``WA_Bsuid__c``; ``ctwa_clid`` → ``WA_Ctwa_Clid__c``."""
    return "WA_" + "_".join(part.capitalize() for part in name.split("_") if part) + "__c"


def contact_field(name: str) -> str:
    """The Contact field an ``upsert_contact`` field is written to."""
    return CONTACT_FIELDS.get(name, custom_field(name))


def case_field(name: str) -> str:
    """The Case field an ``upsert_case`` field is written to (``status`` is translated to
    one of the org's Case statuses)."""
    return "Status" if name == "status" else CASE_FIELDS.get(name, custom_field(name))


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


def deal_field(name: str) -> str:
    """The Opportunity field an ``upsert_deal`` field is written to."""
    return OPPORTUNITY_FIELDS.get(name, custom_field(name))


def outcome_field(name: str) -> str:
    """The Case (or Contact) field a ``record_outcome`` field is written to."""
    return custom_field(name if name == "outcome" else f"outcome_{name}")


# A consent's time and evidence, by the suffix of their Contact field: Salesforce names are
# at most 40 characters, and ``..._Consent_Occurred_At`` is 41 for WhatsApp marketing.
_CONSENT_PARTS: Final = (("occurred_at", "at"), ("evidence", "evidence"))


def consent_fields(fields: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    """A ``set_consent``'s fields by Contact field: the status, its time and its evidence."""
    prefix = f"{fields.get('channel') or 'whatsapp'}_{fields.get('purpose') or 'marketing'}"
    out = {custom_field(f"{prefix}_consent"): fields.get("status")}
    for name, suffix in _CONSENT_PARTS:
        if name in fields:
            out[custom_field(f"{prefix}_consent_{suffix}")] = fields[name]
    return out
