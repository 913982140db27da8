"""The Kafka security settings as librdkafka properties (the receiver's confluent producer).

Each mapping is also handed to a real ``confluent_kafka.Producer``: librdkafka checks
property names and values, and loads the TLS files, when the producer is built.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import trustme
from confluent_kafka import KafkaException, Producer
from pydantic import SecretStr

from wa_bridge.bus.oauth import FileTokenProvider
from wa_bridge.bus.rdkafka_config import OAUTH_REFRESH_S, OAuthCallback, rdkafka_security_config
from wa_bridge.bus.rdkafka_producer import RdKafkaPublisher, producer_config
from wa_bridge.errors import ConfigError
from wa_bridge.settings import Settings

from ._tls import TlsFiles, write_client_files


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def built(security: dict[str, Any]) -> Producer:
    """A producer librdkafka accepted (it raises KafkaException for a bad property)."""
    config = producer_config(
        bootstrap="127.0.0.1:1",
        enable_idempotence=False,
        linger_ms=2,
        max_batch_bytes=256 * 1024,
        publish_timeout_s=1.0,
        security=security,
    )
    return Producer(config)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> TlsFiles:
    return write_client_files(ca, tmp_path)


def test_plaintext_is_only_the_protocol() -> None:
    assert rdkafka_security_config(settings()) == {"security.protocol": "PLAINTEXT"}


def test_the_producer_keeps_acks_all_murmur2_and_the_idempotence_setting() -> None:
    for idempotent in (True, False):
        config = producer_config(
            bootstrap="b:9092",
            enable_idempotence=idempotent,
            linger_ms=5,
            max_batch_bytes=1024,
            publish_timeout_s=2.5,
            security={"security.protocol": "PLAINTEXT"},
        )
        assert config["acks"] == "all"
        assert config["enable.idempotence"] is idempotent
        assert config["partitioner"] == "murmur2_random"
        assert (config["linger.ms"], config["batch.size"]) == (5, 1024)
        assert config["message.timeout.ms"] == 2500
        built(config | {"bootstrap.servers": "127.0.0.1:1"})


def test_mutual_tls_maps_every_file(tls_files: TlsFiles) -> None:
    config = rdkafka_security_config(
        settings(
            kafka_security_protocol="SSL",
            kafka_ssl_ca_file=tls_files.ca,
            kafka_ssl_cert_file=tls_files.client_cert,
            kafka_ssl_key_file=tls_files.client_key,
        )
    )
    assert config == {
        "security.protocol": "SSL",
        "enable.ssl.certificate.verification": True,
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": str(tls_files.ca),
        "ssl.certificate.location": str(tls_files.client_cert),
        "ssl.key.location": str(tls_files.client_key),
    }
    built(config)


def test_tls_without_a_ca_file_probes_the_system_store() -> None:
    config = rdkafka_security_config(settings(kafka_security_protocol="SSL"))
    assert config["ssl.ca.location"] == "probe"
    assert "ssl.certificate.location" not in config
    built(config)


def test_encrypted_key_gets_its_password_and_a_key_inside_the_certificate_file(
    ca: trustme.CA, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization

    leaf = ca.issue_cert("client.wa-bridge.test")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    combined = tmp_path / "client-with-key.pem"
    combined.write_bytes(
        leaf.cert_chain_pems[0].bytes()
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"key-pass"),
        )
    )
    config = rdkafka_security_config(
        settings(
            kafka_security_protocol="SSL",
            kafka_ssl_cert_file=combined,
            kafka_ssl_key_password=SecretStr("key-pass"),
        )
    )
    assert config["ssl.key.location"] == str(combined)
    assert config["ssl.key.password"] == "key-pass"
    built(config)
    with pytest.raises(KafkaException):  # librdkafka really opens the key with it
        built(config | {"ssl.key.password": "wrong"})


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_password_mechanisms(tls_files: TlsFiles, mechanism: str) -> None:
    config = rdkafka_security_config(
        settings(
            kafka_security_protocol="SASL_SSL",
            kafka_ssl_ca_file=tls_files.ca,
            kafka_sasl_mechanism=mechanism,
            kafka_sasl_username="wa-bridge",
            kafka_sasl_password=SecretStr("s3cret-pass"),
        )
    )
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanisms"] == mechanism
    assert (config["sasl.username"], config["sasl.password"]) == ("wa-bridge", "s3cret-pass")
    assert config["ssl.ca.location"] == str(tls_files.ca)
    built(config)


def test_sasl_plaintext_has_no_tls_properties() -> None:
    config = rdkafka_security_config(
        settings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="wa-bridge",
            kafka_sasl_password=SecretStr("s3cret-pass"),
        )
    )
    assert not any(name.startswith("ssl.") for name in config)
    built(config)


def test_oauthbearer_callback_reads_the_token_and_sends_the_extensions(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("  header.payload.sig\n")
    config = rdkafka_security_config(
        settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="OAUTHBEARER",
            kafka_oauth_token_file=token_file,
            kafka_oauth_extensions="logicalCluster=lkc-123",
        )
    )
    callback = config["oauth_cb"]
    assert config["sasl.mechanisms"] == "OAUTHBEARER"
    assert isinstance(callback, OAuthCallback)
    assert isinstance(callback.provider, FileTokenProvider)
    token, expiry, principal, extensions = callback(None)
    assert (token, principal, extensions) == (
        "header.payload.sig",
        "",
        {"logicalCluster": "lkc-123"},
    )
    assert time.time() < expiry <= time.time() + OAUTH_REFRESH_S
    built(config)


def test_the_same_bad_settings_are_refused_as_for_aiokafka(tls_files: TlsFiles) -> None:
    with pytest.raises(ConfigError, match="WA_BRIDGE_KAFKA_SSL_KEY_FILE is set without"):
        rdkafka_security_config(
            settings(kafka_security_protocol="SSL", kafka_ssl_key_file=tls_files.client_key)
        )
    with pytest.raises(ConfigError, match=r"WA_BRIDGE_KAFKA_SSL_CA_FILE is set but .*PLAINTEXT"):
        rdkafka_security_config(settings(kafka_ssl_ca_file=tls_files.ca))
    with pytest.raises(ConfigError, match="WA_BRIDGE_KAFKA_SASL_USERNAME and"):
        rdkafka_security_config(
            settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="wa-bridge")
        )


def test_a_fractional_linger_from_the_environment_reaches_librdkafka(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WA_BRIDGE_KAFKA_LINGER_MS", "0.25")
    linger = Settings(_env_file=None).kafka_linger_ms
    assert linger == 0.25
    config = producer_config(
        bootstrap="127.0.0.1:1",
        enable_idempotence=True,
        linger_ms=linger,
        max_batch_bytes=1024,
        publish_timeout_s=1.0,
        security={"security.protocol": "PLAINTEXT"},
    )
    assert config["linger.ms"] == 0.25
    built(config)  # librdkafka takes the fraction (it raises for a bad property)


def test_the_default_linger_is_half_a_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WA_BRIDGE_KAFKA_LINGER_MS", raising=False)
    assert Settings(_env_file=None).kafka_linger_ms == 0.5
    assert RdKafkaPublisher(bootstrap="b:9092", topic="t").linger_ms == 0.5
