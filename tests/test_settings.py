"""Settings: env prefix, comma lists, one-line errors, and precedence pair by pair."""

from __future__ import annotations

from pathlib import Path

import pytest

from wa_bridge.errors import ConfigError
from wa_bridge.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("WA_BRIDGE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_app_secrets_are_comma_separated_for_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_BRIDGE_APP_SECRETS", "old-secret, new-secret")
    settings = load_settings()
    assert [s.get_secret_value() for s in settings.app_secrets] == ["old-secret", "new-secret"]


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_BRIDGE_APP_SECRETS", "hunter2")
    monkeypatch.setenv("WA_BRIDGE_VERIFY_TOKEN", "tok-123")
    text = repr(load_settings())
    assert "hunter2" not in text
    assert "tok-123" not in text


def test_bad_value_names_the_variable_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_BRIDGE_KAFKA_PARTITIONS", "many")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("WA_BRIDGE_KAFKA_PARTITIONS:")
    assert "\n" not in message


def test_retry_delays_parse_from_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_BRIDGE_RETRY_DELAYS_S", "0.5,2,30")
    assert load_settings().retry_delays_s == [0.5, 2.0, 30.0]


def test_precedence_init_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_BRIDGE_KAFKA_TOPIC", "from-env")
    assert load_settings(kafka_topic="from-init").kafka_topic == "from-init"


def test_precedence_env_over_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WA_BRIDGE_KAFKA_TOPIC=from-dotenv\n")
    monkeypatch.setenv("WA_BRIDGE_KAFKA_TOPIC", "from-env")
    assert load_settings().kafka_topic == "from-env"


def test_precedence_dotenv_over_default(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WA_BRIDGE_KAFKA_TOPIC=from-dotenv\n")
    assert load_settings().kafka_topic == "from-dotenv"
    (tmp_path / ".env").unlink()
    assert load_settings().kafka_topic == "wa.events"
