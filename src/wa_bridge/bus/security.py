"""Kafka connection security: the settings turned into aiokafka client options.

:func:`kafka_client_options` is the one place where ``WA_BRIDGE_KAFKA_SECURITY_PROTOCOL``,
the TLS files and the SASL credentials become keyword arguments of an aiokafka client.
Every client wa-bridge builds takes them: the receiver's producer, the admin client that
creates topics, the worker's consumer and producer. A bad combination raises ConfigError
naming the variables, so it fails at start-up, not at the first connection.

What aiokafka supports, and so wa-bridge: TLS (the broker's certificate is always verified
and its host name checked; a client certificate is optional) and SASL with PLAIN,
SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (see :mod:`wa_bridge.bus.oauth`). GSSAPI
(Kerberos, needs the ``gssapi`` package and a keytab) and Amazon's ``AWS_MSK_IAM``
mechanism are not offered.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Final

from wa_bridge.bus.oauth import ClientCredentialsTokenProvider, FileTokenProvider
from wa_bridge.errors import ConfigError
from wa_bridge.settings import ENV_PREFIX, Settings

__all__ = ["build_ssl_context", "kafka_client_options"]

_TLS_PROTOCOLS: Final = frozenset({"SSL", "SASL_SSL"})
_SASL_PROTOCOLS: Final = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
_TLS_FIELDS: Final = ("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file")
_SASL_FIELDS: Final = (
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_oauth_token_url",
    "kafka_oauth_client_id",
    "kafka_oauth_client_secret",
    "kafka_oauth_token_file",
)


def _var(field: str) -> str:
    return ENV_PREFIX + field.upper()


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin).

    Reads the TLS files now (an unreadable or invalid file is a ConfigError) and, for
    OAUTHBEARER, builds the token provider; it fetches no token yet. Pure otherwise.
    """
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in _TLS_PROTOCOLS:
        options["ssl_context"] = build_ssl_context(
            ca_file=settings.kafka_ssl_ca_file,
            cert_file=settings.kafka_ssl_cert_file,
            key_file=settings.kafka_ssl_key_file,
            key_password=(
                settings.kafka_ssl_key_password.get_secret_value()
                if settings.kafka_ssl_key_password
                else None
            ),
        )
    else:
        _refuse_unused(settings, _TLS_FIELDS, "used only with SSL or SASL_SSL")
    if protocol in _SASL_PROTOCOLS:
        options.update(_sasl_options(settings))
    else:
        _refuse_unused(settings, _SASL_FIELDS, "used only with SASL_PLAINTEXT or SASL_SSL")
    return options


def _refuse_unused(settings: Settings, fields: tuple[str, ...], why: str) -> None:
    given = [_var(name) for name in fields if getattr(settings, name) is not None]
    if given:
        raise ConfigError(
            f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} set but "
            f"{_var('kafka_security_protocol')} is {settings.kafka_security_protocol}: "
            f"{why}"
        )


def _sasl_options(settings: Settings) -> dict[str, Any]:
    mechanism = settings.kafka_sasl_mechanism
    if mechanism == "OAUTHBEARER":
        return {"sasl_mechanism": mechanism, "sasl_oauth_token_provider": _token_provider(settings)}
    password = settings.kafka_sasl_password
    if not settings.kafka_sasl_username or password is None or not password.get_secret_value():
        raise ConfigError(
            f"{_var('kafka_sasl_mechanism')}={mechanism} needs {_var('kafka_sasl_username')} "
            f"and {_var('kafka_sasl_password')}"
        )
    return {
        "sasl_mechanism": mechanism,
        "sasl_plain_username": settings.kafka_sasl_username,
        "sasl_plain_password": password.get_secret_value(),
    }


def _token_provider(settings: Settings) -> FileTokenProvider | ClientCredentialsTokenProvider:
    token_file = settings.kafka_oauth_token_file
    url, client_id = settings.kafka_oauth_token_url, settings.kafka_oauth_client_id
    secret = settings.kafka_oauth_client_secret
    credentials = (url, client_id, secret)
    if token_file is not None and any(v is not None for v in credentials):
        raise ConfigError(
            f"{_var('kafka_oauth_token_file')} and {_var('kafka_oauth_token_url')} are both "
            "set: use a token file or the client-credentials flow, not both"
        )
    extensions = _extensions(settings.kafka_oauth_extensions)
    if token_file is not None:
        return FileTokenProvider(token_file, extensions=extensions)
    if url is None or client_id is None or secret is None:
        raise ConfigError(
            f"{_var('kafka_sasl_mechanism')}=OAUTHBEARER needs {_var('kafka_oauth_token_file')}"
            f", or {_var('kafka_oauth_token_url')}, {_var('kafka_oauth_client_id')} and "
            f"{_var('kafka_oauth_client_secret')}"
        )
    return ClientCredentialsTokenProvider(
        token_url=url,
        client_id=client_id,
        client_secret=secret,
        scope=settings.kafka_oauth_scope,
        extensions=extensions,
    )


def _extensions(entries: list[str]) -> dict[str, str]:
    found = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(
                f"{_var('kafka_oauth_extensions')}: each entry must be key=value, got {entry!r}"
            )
        found[key.strip()] = value.strip()
    return found


def build_ssl_context(
    *,
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    key_password: str | None = None,
) -> ssl.SSLContext:
    """A client TLS context: TLS 1.2 or later, the server verified, its host name checked.

    ``ca_file`` unset: the system's CA store (what managed services need). A client
    certificate (``cert_file``, with ``key_file`` unless the key is in the same file)
    is presented when the broker asks. Unreadable or invalid files raise ConfigError.
    """
    if key_file is not None and cert_file is None:
        raise ConfigError(
            f"{_var('kafka_ssl_key_file')} is set without {_var('kafka_ssl_cert_file')}"
        )
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=_readable(ca_file, "kafka_ssl_ca_file"))
        except ssl.SSLError as exc:
            raise ConfigError(
                f"{_var('kafka_ssl_ca_file')}: {ca_file} holds no PEM certificate ({exc.reason})"
            ) from exc
    if cert_file is not None:
        cert = _readable(cert_file, "kafka_ssl_cert_file")
        key = _readable(key_file, "kafka_ssl_key_file") if key_file is not None else None
        try:
            # Never OpenSSL's default for an encrypted key without a password: it prompts
            # on the terminal, which blocks a server forever.
            context.load_cert_chain(cert, key, password=key_password or _no_password)
        except ssl.SSLError as exc:
            raise ConfigError(
                f"{_var('kafka_ssl_cert_file')}/{_var('kafka_ssl_key_file')}: cannot load the "
                "client certificate (not PEM, key does not match, or wrong "
                f"{_var('kafka_ssl_key_password')}: {exc.reason})"
            ) from exc
    return context


def _no_password() -> bytes:
    return b""


def _readable(path: Path, field: str) -> str:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{_var(field)}: cannot read {path}: {exc.strerror}") from exc
    return str(path)
