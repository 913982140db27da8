"""Each vendor's field names: its own where it has one, else its custom name (one rule)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from wa_bridge.connectors._records import deal_stage
from wa_bridge.connectors.hubspot import properties as hubspot
from wa_bridge.connectors.salesforce import fields as salesforce
from wa_bridge.errors import MappingOutputInvalid
from wa_bridge.operations import CrmOperation


@pytest.mark.parametrize(
    ("name", "field", "expected"),
    [
        (hubspot.contact_property, "phone_e164", "phone"),
        (hubspot.contact_property, "bsuid", "wa_bsuid"),
        (hubspot.ticket_property, "subject", "subject"),
        (hubspot.ticket_property, "status", "wa_status"),
        (hubspot.deal_property, "closed_at", "closedate"),
        (hubspot.outcome_property, "occurred_at", "wa_outcome_at"),
        (hubspot.outcome_property, "outcome", "wa_outcome"),
        (salesforce.contact_field, "name", "LastName"),
        (salesforce.contact_field, "ctwa_clid", "WA_Ctwa_Clid__c"),
        (salesforce.case_field, "status", "Status"),
        (salesforce.deal_field, "stage", "StageName"),
        (salesforce.deal_field, "currency", "WA_Currency__c"),
    ],
)
def test_standard_names_win_and_other_fields_get_the_custom_name(
    name: Callable[[str], str], field: str, expected: str
) -> None:
    assert name(field) == expected


def test_consent_names_per_vendor() -> None:
    fields = {"status": "opt_in", "purpose": "utility", "occurred_at": "t", "evidence": "e"}
    assert hubspot.consent_properties(fields) == {
        "wa_whatsapp_utility_consent": "opt_in",
        "wa_whatsapp_utility_consent_at": "t",
        "wa_whatsapp_utility_consent_evidence": "e",
    }
    assert salesforce.consent_fields({"status": "opt_out", "channel": "sms"}) == {
        "WA_Sms_Marketing_Consent__c": "opt_out"
    }


def test_a_deal_stage_the_crm_has_no_value_for_is_a_mapping_error() -> None:
    stages = {"open": "Prospecting", "won": "Closed Won"}
    op = CrmOperation("upsert_deal", {"stage": "lost"}, "ev-1", source="sales.yaml:7")
    assert deal_stage(CrmOperation("upsert_deal", {"stage": "won"}, "ev-1"), stages, "x") == (
        "Closed Won"
    )
    with pytest.raises(MappingOutputInvalid, match="no Salesforce StageName for 'lost'"):
        deal_stage(op, stages, "Salesforce StageName")
