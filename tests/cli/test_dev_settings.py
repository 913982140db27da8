"""What `wa-bridge dev` changes in the settings for local use, and that the env still wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from wa_bridge.cli.dev import dev_settings
from wa_bridge.settings import Settings


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("WA_BRIDGE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_dev_defaults_suit_one_process_on_tansu_and_sqlite(tmp_path: Path) -> None:
    settings = dev_settings(Settings(), bootstrap="127.0.0.1:1", data_dir=tmp_path)
    assert settings.kafka_enable_idempotence is False
    assert settings.kafka_partitions == 1
    assert settings.consumer_fetch_max_wait_ms == 50
    assert settings.consumer_session_timeout_ms == 3000
    assert settings.database_url == f"sqlite+aiosqlite:///{(tmp_path / 'wa-bridge.db').resolve()}"
    assert settings.app_secrets and settings.verify_token.get_secret_value()
    again = dev_settings(Settings(), bootstrap="127.0.0.1:1", data_dir=tmp_path)
    assert again.app_secrets == settings.app_secrets  # kept in dev-secrets.env


def test_environment_wins_over_dev_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WA_BRIDGE_KAFKA_PARTITIONS", "6")
    monkeypatch.setenv("WA_BRIDGE_CONSUMER_FETCH_MAX_WAIT_MS", "200")
    monkeypatch.setenv("WA_BRIDGE_CONSUMER_SESSION_TIMEOUT_MS", "10000")
    monkeypatch.setenv("WA_BRIDGE_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    settings = dev_settings(Settings(), bootstrap="127.0.0.1:1", data_dir=tmp_path)
    assert settings.kafka_partitions == 6
    assert settings.consumer_fetch_max_wait_ms == 200
    assert settings.consumer_session_timeout_ms == 10000
    assert settings.database_url == "postgresql+asyncpg://u@h/db"
