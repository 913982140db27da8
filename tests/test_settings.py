"""Settings: env prefix, comma lists, one-line errors, and precedence pair by pair."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from wa_bridge.errors import ConfigError
from wa_bridge.settings import load_settings, secret_field_names


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


# --- secrets from files: WA_BRIDGE_<NAME>_FILE and WA_BRIDGE_SECRETS_DIR ------------------


def _secret_file(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / "run-secrets" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(content)
    return path


def test_precedence_init_over_file_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WA_BRIDGE_VERIFY_TOKEN_FILE", str(_secret_file(tmp_path, "t", "file")))
    assert load_settings(verify_token="init").verify_token.get_secret_value() == "init"


def test_env_and_file_variable_together_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WA_BRIDGE_VERIFY_TOKEN", "from-env")
    monkeypatch.setenv("WA_BRIDGE_VERIFY_TOKEN_FILE", str(_secret_file(tmp_path, "t", "file")))
    with pytest.raises(ConfigError, match="WA_BRIDGE_VERIFY_TOKEN and WA_BRIDGE_VERIFY_TOKEN_FILE"):
        load_settings()


def test_precedence_file_variable_over_dotenv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("WA_BRIDGE_VERIFY_TOKEN=from-dotenv\n")
    monkeypatch.setenv("WA_BRIDGE_VERIFY_TOKEN_FILE", str(_secret_file(tmp_path, "t", "file\n")))
    assert load_settings().verify_token.get_secret_value() == "file"


def test_precedence_dotenv_over_secrets_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("WA_BRIDGE_VERIFY_TOKEN=from-dotenv\n")
    secret = _secret_file(tmp_path, "wa_bridge_verify_token", "from-dir\n")
    monkeypatch.setenv("WA_BRIDGE_SECRETS_DIR", str(secret.parent))
    assert load_settings().verify_token.get_secret_value() == "from-dotenv"


def test_precedence_secrets_dir_over_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = _secret_file(tmp_path, "wa_bridge_verify_token", "from-dir\n")
    monkeypatch.setenv("WA_BRIDGE_SECRETS_DIR", str(secret.parent))
    assert load_settings().verify_token.get_secret_value() == "from-dir"
    secret.unlink()
    assert load_settings().verify_token.get_secret_value() == ""


@pytest.mark.parametrize("name", secret_field_names())
def test_every_secret_can_come_from_a_file_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    value = "operator:0123456789abcdef0123" if name == "admin_tokens" else "s3cret-from-file"
    path = _secret_file(tmp_path, name, value + "\n")
    monkeypatch.setenv(f"WA_BRIDGE_{name.upper()}_FILE", str(path))
    got = getattr(load_settings(), name)
    if isinstance(got, list):
        got = got[0]
    assert (got.get_secret_value() if isinstance(got, SecretStr) else got) == value


def test_secret_fields_are_the_secrets() -> None:
    names = set(secret_field_names())
    assert {"app_secrets", "verify_token", "crm_token", "admin_tokens", "database_url"} <= names
    assert {"kafka_sasl_password", "kafka_ssl_key_password", "kafka_oauth_client_secret"} <= names
    assert "kafka_bootstrap" not in names and "kafka_sasl_username" not in names


def test_kubernetes_style_secret_mount_with_a_comma_list(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A Secret volume: KEY -> ..data/KEY -> ..2026_06_10/KEY, all inside the mount.
    mount = tmp_path / "secrets"
    version = mount / "..2026_06_10"
    version.mkdir(parents=True)
    (version / "WA_BRIDGE_APP_SECRETS").write_text("old-secret,new-secret")
    (mount / "..data").symlink_to(version.name)
    (mount / "WA_BRIDGE_APP_SECRETS").symlink_to("..data/WA_BRIDGE_APP_SECRETS")
    monkeypatch.setenv("WA_BRIDGE_SECRETS_DIR", str(mount))
    secrets = load_settings().app_secrets
    assert [s.get_secret_value() for s in secrets] == ["old-secret", "new-secret"]


def test_unreadable_secret_file_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WA_BRIDGE_CRM_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"WA_BRIDGE_CRM_TOKEN_FILE: cannot read .*missing"):
        load_settings()


def test_secrets_dir_that_is_not_a_directory_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WA_BRIDGE_SECRETS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"WA_BRIDGE_SECRETS_DIR: .* is not a directory"):
        load_settings()


def test_secrets_from_files_never_print(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WA_BRIDGE_CRM_TOKEN_FILE", str(_secret_file(tmp_path, "c", "tok-987")))
    assert "tok-987" not in repr(load_settings())
