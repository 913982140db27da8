"""HubSpot property names and values: the one home read by the connector and by setup.

A mapped field ``x`` is written to the custom property ``wa_x`` unless HubSpot has a
property of its own for it (``phone``, ``email``, a ticket's ``subject``, a note's body and
time). Setup creates every ``wa_*`` name these functions give; the connector writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Final, Literal

from wa_bridge.connectors._naming import FieldNames, consent_names
from wa_bridge.connectors._plan import case_statuses
from wa_bridge.operations import FieldValue, Scalar

if TYPE_CHECKING:
    from wa_bridge.settings import Settings

__all__ = [
    "CASE_KEY_REF",
    "CONTACT_KEY_REF",
    "DEFAULT_DEAL_STAGES",
    "ApiStyle",
    "HubSpotOptions",
    "NoteObject",
    "consent_properties",
    "contact_property",
    "custom_property",
    "deal_property",
    "note_property",
    "outcome_property",
    "property_value",
    "ticket_property",
]

ApiStyle = Literal["v3", "2026-03"]
NoteObject = Literal["communications", "notes"]

# Tickets and notes carry their contact's (and a note its case's) key, for reports.
CONTACT_KEY_REF: Final = "wa_contact_key"
CASE_KEY_REF: Final = "wa_case_key_ref"
# A deal's stage (the mapping's open | won | lost) in HubSpot's default sales pipeline.
DEFAULT_DEAL_STAGES: Final[Mapping[str, str]] = {
    "open": "appointmentscheduled",
    "won": "closedwon",
    "lost": "closedlost",
}


# The pipeline stage of each case status in HubSpot's default support pipeline ("0").
DEFAULT_TICKET_STAGES: Final = case_statuses(open="1", pending="2", resolved="4", closed="4")


@dataclass(frozen=True, slots=True)
class HubSpotOptions:
    """Portal-specific names; the defaults fit a portal set up from wa-bridge's docs."""

    api_style: ApiStyle = "v3"
    note_object: NoteObject = "communications"
    ticket_stages: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TICKET_STAGES))
    contact_id_property: str = "wa_contact_key"  # the unique properties records are keyed by
    case_id_property: str = "wa_case_key"
    note_id_property: str = "wa_note_key"
    ticket_pipeline: str = "0"  # a new ticket's pipeline and subject
    default_subject: str = "WhatsApp conversation"
    deal_id_property: str = "wa_deal_key"
    deal_pipeline: str = "default"  # the deals pipeline, and its stage of each deal stage
    deal_stages: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_DEAL_STAGES))
    default_deal_name: str = "WhatsApp sale"
    deals: bool = False  # deals are written (WA_BRIDGE_CRM_DEALS): setup provisions theirs

    @classmethod
    def from_settings(cls, settings: Settings) -> HubSpotOptions:
        return cls(
            api_style=settings.hubspot_api_style,
            note_object=settings.hubspot_note_object,
            deal_pipeline=settings.crm_deal_pipeline,
            deal_stages={**DEFAULT_DEAL_STAGES, **settings.crm_deal_stages},
            deals=bool(settings.crm_deals),
        )

    @property
    def note_body_property(self) -> str:
        return "hs_note_body" if self.note_object == "notes" else "hs_communication_body"


def _scalar_value(value: Scalar) -> str:
    if value is None:
        return ""  # HubSpot clears a property set to ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return str(int(aware.timestamp() * 1000))
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def property_value(value: FieldValue) -> str:
    """A field value as a HubSpot property string (lists ``;``-joined, times in epoch ms)."""
    if isinstance(value, tuple):
        return ";".join(_scalar_value(v) for v in value)
    return _scalar_value(value)


def custom_property(name: str) -> str:
    """The custom property a mapped field is written to (``wa_`` prefixed)."""
    return name if name.startswith("wa_") else f"wa_{name}"


# The property each field of an operation is written to: HubSpot's own where it has one
# for the field, else the field's custom property.
contact_property: Final = FieldNames(
    custom_property,
    {"phone_e164": "phone", "email": "email", "name": "firstname", "country": "country"},
)
# an upsert_case's ``status`` (``wa_status``) also moves the ticket's pipeline stage
ticket_property: Final = FieldNames(custom_property, {"subject": "subject"})
# ``stage`` is translated to the deal pipeline's stage
deal_property: Final = FieldNames(
    custom_property,
    {
        "name": "dealname",
        "stage": "dealstage",
        "amount": "amount",
        "currency": "deal_currency_code",
        "closed_at": "closedate",
    },
)
# a record_outcome's fields, on the ticket or the contact
outcome_property: Final = FieldNames(
    custom_property,
    {
        "value": "wa_outcome_value",
        "currency": "wa_outcome_currency",
        "reason": "wa_outcome_reason",
        "occurred_at": "wa_outcome_at",
    },
)


def note_property(name: str, *, is_status_only: bool, options: HubSpotOptions) -> str:
    """The note property an ``add_note`` field is written to.

    A status's time is not the message's time: it goes to ``wa_status_at`` and leaves
    ``hs_timestamp`` to the message (a status that comes first creates the record with
    its own time as a create-only default).
    """
    if name == "body":
        return options.note_body_property
    if name == "occurred_at":
        return "wa_status_at" if is_status_only else "hs_timestamp"
    return custom_property(name)


def consent_properties(fields: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    """A ``set_consent``'s fields by property: the status, its time and its evidence, in
    ``wa_{channel}_{purpose}_consent`` (defaults: whatsapp, marketing), ``..._at`` and
    ``..._evidence``.

    HubSpot's consent API is e-mail only, so consent is kept as contact properties.
    """
    return consent_names(fields, lambda name: f"wa_{name}")
