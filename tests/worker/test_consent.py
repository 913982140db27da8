"""Which events are consent (wa_bridge.worker.consent): pure, on real event shapes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wa_bridge.normalize.consent import normalize_consent
from wa_bridge.settings import Settings
from wa_bridge.worker.consent import ConsentOptions, changed_event, consents_of, keyword_key
from worker.conversation_events import at, customer_text, echo, webhook_events

WA = "5215550001234"
NOW = datetime(2026, 6, 11, tzinfo=UTC)
OPTIONS = ConsentOptions.from_settings(Settings())


def _consents(events: list, options: ConsentOptions = OPTIONS) -> list:  # type: ignore[type-arg]
    return consents_of(events, {e.id: "c_1" for e in events}, options, NOW)


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("BAJA", "opt_out"),
        ("baja.", "opt_out"),
        ("  Stop!! ", "opt_out"),
        ("Parar", "opt_out"),
        ("SAIR", "opt_out"),
        ("alta", "opt_in"),
        ("START", "opt_in"),
        ("Suscribír", "opt_in"),  # accents ignored
    ],
)
def test_a_customer_keyword_changes_consent(text: str, status: str) -> None:
    [change] = _consents(webhook_events(customer_text(WA, 1, at(0), text)))
    record = change.record
    assert (record.status, record.captured_via, record.at) == (status, "whatsapp_keyword", at(0))
    assert (record.channel, record.purpose) == ("whatsapp", "marketing")


@pytest.mark.parametrize(
    "text", ["please stop sending me offers", "stop it", "BAJA BAJA", "¿cómo me doy de baja?"]
)
def test_a_sentence_is_never_a_keyword(text: str) -> None:
    assert _consents(webhook_events(customer_text(WA, 1, at(0), text))) == []


def test_the_business_own_messages_never_count() -> None:
    assert _consents(webhook_events(echo(WA, 2, at(1), "STOP"))) == []


def test_keywords_can_be_turned_off_or_changed() -> None:
    events = webhook_events(customer_text(WA, 1, at(0), "BAJA"))
    assert _consents(events, ConsentOptions.of({})) == []
    custom = ConsentOptions.of({"fr": {"stop": ["arrêt"], "start": ["oui"]}})
    assert _consents(events, custom) == []
    [change] = _consents(webhook_events(customer_text(WA, 1, at(0), "ARRET")), custom)
    assert change.record.evidence == "keyword 'arret' (fr)"


def test_keyword_key_folds_case_accents_and_edges() -> None:
    assert keyword_key(" ¡Bája! ") == "baja" == keyword_key("BAJA...")


def test_posted_evidence_is_a_ledger_row_with_everything_shown() -> None:
    body = {
        "id": "form-1",
        "contact": {"wa_id": WA},
        "captured_via": "web_form",
        "purpose": "utility",
        "text_shown": "Acepto avisos de mi pedido.",
        "time": "2026-06-10T16:00:00Z",
        "source": "checkout",
    }
    event = normalize_consent(body, received_at=NOW, recorded_by="token:ab12")
    [change] = _consents([event])
    r = change.record
    assert (r.event_id, r.status, r.purpose, r.captured_via) == (
        "consent:form-1",
        "opt_in",
        "utility",
        "web_form",
    )
    assert (r.text_shown, r.source, r.recorded_by) == (
        "Acepto avisos de mi pedido.",
        "checkout",
        "token:ab12",
    )
    changed = changed_event(change)
    assert changed.type == "consent.changed" and changed.id == "consent:form-1#consent"
    assert changed.data["timestamp"] == "2026-06-10T16:00:00Z"
    assert changed.data["evidence"].startswith("web_form: web_form checkout")


def test_meta_stop_is_an_opt_out_at_its_own_time() -> None:
    from worker.sqlcrm import sample_events

    prefs = [e for e in sample_events("user_updates.json") if e.type.endswith("preferences")]
    [change] = _consents(prefs)
    r = change.record
    assert (r.status, r.captured_via, r.source) == ("opt_out", "whatsapp_preferences", "meta")
    assert r.at == datetime(2026, 6, 11, 17, 48, 50, tzinfo=UTC)
