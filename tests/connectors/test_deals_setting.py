"""WA_BRIDGE_CRM_DEALS and its stages: on for the SQL CRM by default, refused for REST."""

from __future__ import annotations

import pytest

from wa_bridge.connectors import deals_enabled
from wa_bridge.connectors.hubspot import HubSpotOptions
from wa_bridge.errors import ConfigError
from wa_bridge.settings import Settings


@pytest.mark.parametrize(
    ("connector", "setting", "enabled"),
    [
        ("sql", None, True),
        ("sql", False, False),
        ("hubspot", None, False),
        ("hubspot", True, True),
        ("salesforce", True, True),
        ("rest", None, False),
    ],
)
def test_deals_are_on_for_sql_unless_set(
    connector: str, setting: bool | None, enabled: bool
) -> None:
    settings = Settings(connector=connector, crm_deals=setting)
    assert deals_enabled(settings) is enabled


def test_the_rest_contract_has_no_deals() -> None:
    with pytest.raises(ConfigError, match="REST CRM contract has no deals"):
        deals_enabled(Settings(connector="rest", crm_deals=True))


def test_stages_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_BRIDGE_CRM_DEAL_STAGES", "won:ganado, open:nuevo")
    monkeypatch.setenv("WA_BRIDGE_CRM_DEAL_PIPELINE", "ventas-whatsapp")
    options = HubSpotOptions.from_settings(Settings(connector="hubspot", crm_deals=True))
    assert options.deal_stages == {"open": "nuevo", "won": "ganado", "lost": "closedlost"}
    assert (options.deal_pipeline, options.deals) == ("ventas-whatsapp", True)


@pytest.mark.parametrize("bad", ["won", "done:x", "won:"])
def test_a_bad_stage_stops_start_up(bad: str) -> None:
    with pytest.raises(ValueError, match="open\\|won\\|lost"):
        Settings(crm_deal_stages=bad)
