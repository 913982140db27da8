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

from wa_bridge.connectors._plan import case_statuses
from wa_bridge.operations import FieldValue, Scalar

if TYPE_CHECKING:
    from wa_bridge.settings import Settings

__all__ = [
    "CASE_KEY_REF",
    "CONTACT_KEY_REF",
    "CONTACT_PROPERTIES",
    "DEAL_PROPERTIES",
    "DEFAULT_DEAL_STAGES",
    "ApiStyle",
    "HubSpotOptions",
    "NoteObject",
    "consent_properties",
    "consent_property_prefix",
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

CONTACT_PROPERTIES: Final[Mapping[str, str]] = {
    "phone_e164": "phone",
    "email": "email",
    "name": "firstname",
    "country": "country",
}
# Tickets and notes carry their contact's (and a note its case's) key, for reports.
CONTACT_KEY_REF: Final = "wa_contact_key"
CASE_KEY_REF: Final = "wa_case_key_ref"
# A deal's stage (the mapping's open | won | lost) in HubSpot's default sales pipeline.
DEFAULT_DEAL_STAGES: Final[Mapping[str, str]] = {
    "open": "appointmentscheduled",
    "won": "closedwon",
    "lost": "closedlost",
}
# upsert_deal fields HubSpot has a property of its own for (``stage`` is translated).
DEAL_PROPERTIES: Final[Mapping[str, str]] = {
    "name": "dealname",
    "stage": "dealstage",
    "amount": "amount",
    "currency": "deal_currency_code",
    "closed_at": "closedate",
}
_OUTCOME_NAMES: Final[Mapping[str, str]] = {
    "value": "outcome_value",
    "currency": "outcome_currency",
    "reason": "outcome_reason",
    "occurred_at": "outcome_at",
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


def contact_property(name: str) -> str:
    """The contact property an ``upsert_contact`` field is written to."""
    return CONTACT_PROPERTIES.get(name, custom_property(name))


def ticket_property(name: str) -> str:
    """The ticket property an ``upsert_case`` field is written to (``status`` also moves
    the ticket's pipeline stage)."""
    if name == "subject":
        return "subject"
    return "wa_status" if name == "status" else custom_property(name)


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


def deal_property(name: str) -> str:
    """The deal property an ``upsert_deal`` field is written to."""
    return DEAL_PROPERTIES.get(name, custom_property(name))


def outcome_property(name: str) -> str:
    """The property a ``record_outcome`` field is written to."""
    return custom_property(_OUTCOME_NAMES.get(name, name))


def consent_property_prefix(channel: FieldValue, purpose: FieldValue) -> str:
    """``wa_{channel}_{purpose}_consent`` (defaults: whatsapp, marketing)."""
    return f"wa_{channel or 'whatsapp'}_{purpose or 'marketing'}_consent"


def consent_properties(fields: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    """A ``set_consent``'s fields by property: the status, its time and its evidence.

    HubSpot's consent API is e-mail only, so consent is kept as contact properties.
    """
    prefix = consent_property_prefix(fields.get("channel"), fields.get("purpose"))
    out = {prefix: fields.get("status")}
    if "occurred_at" in fields:
        out[f"{prefix}_at"] = fields["occurred_at"]
    if "evidence" in fields:
        out[f"{prefix}_evidence"] = fields["evidence"]
    return out
