"""Kafka security settings down to the aiokafka client options, with real TLS contexts."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from pydantic import SecretStr
from typer.testing import CliRunner

from wa_bridge.bus.oauth import ClientCredentialsTokenProvider, FileTokenProvider
from wa_bridge.bus.security import build_ssl_context, kafka_client_options
from wa_bridge.cli.main import app
from wa_bridge.errors import ConfigError
from wa_bridge.settings import Settings

from ._tls import TlsFiles, write_client_files


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> TlsFiles:
    return write_client_files(ca, tmp_path)


def test_plaintext_is_the_default_and_adds_nothing_else() -> None:
    assert kafka_client_options(settings()) == {"security_protocol": "PLAINTEXT"}


def test_ssl_context_verifies_the_broker_against_the_given_ca(
    ca: trustme.CA, tls_files: TlsFiles
) -> None:
    options = kafka_client_options(
        settings(kafka_security_protocol="SSL", kafka_ssl_ca_file=tls_files.ca)
    )
    context = options["ssl_context"]
    assert options["security_protocol"] == "SSL"
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    subjects = [dict(x[0] for x in cert["subject"]) for cert in context.get_ca_certs()]
    assert any("trustme" in s.get("organizationName", "") for s in subjects)


def test_ssl_without_a_ca_file_trusts_the_system_store() -> None:
    context = kafka_client_options(settings(kafka_security_protocol="SSL"))["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_client_certificate_is_loaded(tls_files: TlsFiles) -> None:
    context = build_ssl_context(
        ca_file=tls_files.ca, cert_file=tls_files.client_cert, key_file=tls_files.client_key
    )
    assert isinstance(context, ssl.SSLContext)


def test_client_key_that_does_not_match_is_a_config_error(
    ca: trustme.CA, tls_files: TlsFiles, tmp_path: Path
) -> None:
    other = write_client_files(ca, tmp_path / "other", name="other")
    with pytest.raises(ConfigError, match="WA_BRIDGE_KAFKA_SSL_CERT_FILE"):
        build_ssl_context(cert_file=tls_files.client_cert, key_file=other.client_key)


def _encrypted_key(ca: trustme.CA, tmp_path: Path, password: bytes) -> tuple[Path, Path]:
    leaf = ca.issue_cert("client.wa-bridge.test")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    cert_path, key_path = tmp_path / "enc.pem", tmp_path / "enc.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert_path))
    key_path.write_bytes(encrypted)
    return cert_path, key_path


def test_encrypted_client_key_opens_with_its_password(ca: trustme.CA, tmp_path: Path) -> None:
    cert, key = _encrypted_key(ca, tmp_path, b"key-pass-123")
    options = kafka_client_options(
        settings(
            kafka_security_protocol="SSL",
            kafka_ssl_cert_file=cert,
            kafka_ssl_key_file=key,
            kafka_ssl_key_password=SecretStr("key-pass-123"),
        )
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)


@pytest.mark.parametrize("password", [None, "wrong-pass"])
def test_encrypted_client_key_without_the_right_password_fails_without_prompting(
    ca: trustme.CA, tmp_path: Path, password: str | None
) -> None:
    # With no password OpenSSL would prompt on the terminal: a server would hang forever.
    cert, key = _encrypted_key(ca, tmp_path, b"key-pass-123")
    with pytest.raises(ConfigError, match="WA_BRIDGE_KAFKA_SSL_KEY_PASSWORD"):
        build_ssl_context(cert_file=cert, key_file=key, key_password=password)


def test_unreadable_ca_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"WA_BRIDGE_KAFKA_SSL_CA_FILE: cannot read .*missing"):
        kafka_client_options(
            settings(kafka_security_protocol="SSL", kafka_ssl_ca_file=tmp_path / "missing.pem")
        )


def test_ca_file_without_a_certificate_is_a_config_error(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="holds no PEM certificate"):
        build_ssl_context(ca_file=bogus)


def test_key_without_certificate_is_a_config_error(tls_files: TlsFiles) -> None:
    with pytest.raises(ConfigError, match="WA_BRIDGE_KAFKA_SSL_KEY_FILE is set without"):
        build_ssl_context(key_file=tls_files.client_key)


def test_tls_files_with_a_plaintext_protocol_are_refused(tls_files: TlsFiles) -> None:
    with pytest.raises(ConfigError, match=r"WA_BRIDGE_KAFKA_SSL_CA_FILE is set but .*PLAINTEXT"):
        kafka_client_options(settings(kafka_ssl_ca_file=tls_files.ca))


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_with_a_password_mechanism(tls_files: TlsFiles, mechanism: str) -> None:
    options = kafka_client_options(
        settings(
            kafka_security_protocol="SASL_SSL",
            kafka_ssl_ca_file=tls_files.ca,
            kafka_sasl_mechanism=mechanism,
            kafka_sasl_username="wa-bridge",
            kafka_sasl_password=SecretStr("s3cret-pass"),
        )
    )
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_username"] == "wa-bridge"
    assert options["sasl_plain_password"] == "s3cret-pass"
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_sasl_plaintext_has_no_tls_context() -> None:
    options = kafka_client_options(
        settings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="SCRAM-SHA-256",
            kafka_sasl_username="wa-bridge",
            kafka_sasl_password=SecretStr("s3cret-pass"),
        )
    )
    assert "ssl_context" not in options and options["sasl_mechanism"] == "SCRAM-SHA-256"


def test_sasl_without_a_password_names_both_variables() -> None:
    with pytest.raises(
        ConfigError, match="WA_BRIDGE_KAFKA_SASL_USERNAME and WA_BRIDGE_KAFKA_SASL_PASSWORD"
    ):
        kafka_client_options(
            settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="wa-bridge")
        )


def test_sasl_credentials_with_a_non_sasl_protocol_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"WA_BRIDGE_KAFKA_SASL_USERNAME.*used only with SASL"):
        kafka_client_options(
            settings(kafka_security_protocol="SSL", kafka_sasl_username="wa-bridge")
        )


def test_oauthbearer_from_a_token_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    options = kafka_client_options(
        settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="OAUTHBEARER",
            kafka_oauth_token_file=token,
        )
    )
    provider = options["sasl_oauth_token_provider"]
    assert options["sasl_mechanism"] == "OAUTHBEARER"
    assert isinstance(provider, FileTokenProvider) and provider.path == token


def test_oauthbearer_client_credentials() -> None:
    options = kafka_client_options(
        settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="OAUTHBEARER",
            kafka_oauth_token_url="https://idp.example/oauth2/token",
            kafka_oauth_client_id="wa-bridge",
            kafka_oauth_client_secret=SecretStr("client-secret-1"),
            kafka_oauth_scope="kafka",
        )
    )
    provider = options["sasl_oauth_token_provider"]
    assert isinstance(provider, ClientCredentialsTokenProvider)
    assert (provider.token_url, provider.client_id, provider.scope) == (
        "https://idp.example/oauth2/token",
        "wa-bridge",
        "kafka",
    )
    assert "client-secret-1" not in repr(provider)


def test_oauthbearer_needs_a_source() -> None:
    with pytest.raises(ConfigError, match="OAUTHBEARER needs WA_BRIDGE_KAFKA_OAUTH_TOKEN_FILE"):
        kafka_client_options(
            settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="OAUTHBEARER")
        )


def test_oauthbearer_with_two_sources_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not both"):
        kafka_client_options(
            settings(
                kafka_security_protocol="SASL_SSL",
                kafka_sasl_mechanism="OAUTHBEARER",
                kafka_oauth_token_file=tmp_path / "token",
                kafka_oauth_token_url="https://idp.example/oauth2/token",
            )
        )


def test_oauthbearer_sends_the_configured_sasl_extensions(tmp_path: Path) -> None:
    options = kafka_client_options(
        settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="OAUTHBEARER",
            kafka_oauth_token_file=tmp_path / "token",
            kafka_oauth_extensions="logicalCluster=lkc-123, identityPoolId=pool-abc",
        )
    )
    assert options["sasl_oauth_token_provider"].extensions() == {
        "logicalCluster": "lkc-123",
        "identityPoolId": "pool-abc",
    }


def test_malformed_sasl_extension_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="WA_BRIDGE_KAFKA_OAUTH_EXTENSIONS: each entry"):
        kafka_client_options(
            settings(
                kafka_security_protocol="SASL_SSL",
                kafka_sasl_mechanism="OAUTHBEARER",
                kafka_oauth_token_file=tmp_path / "token",
                kafka_oauth_extensions="logicalCluster",
            )
        )


def test_receiver_command_exits_2_on_bad_kafka_security(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in [k for k in os.environ if k.startswith("WA_BRIDGE_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WA_BRIDGE_APP_SECRETS", "app-secret-for-the-test")
    monkeypatch.setenv("WA_BRIDGE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("WA_BRIDGE_KAFKA_SASL_USERNAME", "wa-bridge")
    result = CliRunner().invoke(app, ["receiver", "--port", "0"])
    assert result.exit_code == 2
    assert "configuration error" in result.output
    assert "WA_BRIDGE_KAFKA_SASL_PASSWORD" in result.output
