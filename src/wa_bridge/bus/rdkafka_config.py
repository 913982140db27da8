"""The same Kafka settings as :mod:`wa_bridge.bus.security`, as librdkafka configuration.

The receiver's default producer is librdkafka (``confluent-kafka``, see
:mod:`wa_bridge.bus.rdkafka_producer`); every other client stays on aiokafka. Both must
read the same ``WA_BRIDGE_KAFKA_*`` variables and refuse the same bad combinations, so
:func:`rdkafka_config` first runs :func:`~wa_bridge.bus.security.kafka_client_options`
(which checks the files and the SASL fields and raises ConfigError) and then maps:

============================== ==========================================================
setting                        librdkafka property
============================== ==========================================================
kafka_security_protocol        ``security.protocol``
kafka_ssl_ca_file              ``ssl.ca.location`` (unset: ``probe``, the system's CAs)
kafka_ssl_cert_file            ``ssl.certificate.location``
kafka_ssl_key_file             ``ssl.key.location`` (unset: the certificate file)
kafka_ssl_key_password         ``ssl.key.password``
kafka_sasl_mechanism           ``sasl.mechanisms``
kafka_sasl_username/_password  ``sasl.username`` / ``sasl.password``
OAUTHBEARER token provider     ``oauth_cb`` (:class:`OAuthCallback`)
============================== ==========================================================

TLS always verifies the broker's certificate and host name
(``enable.ssl.certificate.verification``, ``ssl.endpoint.identification.algorithm=https``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from aiokafka.abc import AbstractTokenProvider

from wa_bridge.bus.security import kafka_client_options
from wa_bridge.settings import Settings

__all__ = ["OAUTH_REFRESH_S", "OAuthCallback", "rdkafka_security_config"]

_TLS_PROTOCOLS: Final = frozenset({"SSL", "SASL_SSL"})
_SASL_PROTOCOLS: Final = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
# The lifetime librdkafka is told a token has: it asks again at 80 % of it. The token
# providers keep a token for as long as it is valid, so asking often costs nothing.
OAUTH_REFRESH_S: Final = 60.0


class OAuthCallback:
    """librdkafka's ``oauth_cb`` on one of our token providers.

    librdkafka calls it from ``poll()``, that is from the producer's poll thread, never
    from the event loop: it runs the provider's coroutine to completion on a loop of its
    own there. Returns ``(token, expiry, principal, extensions)``; the principal is left
    to the broker (empty). A provider error propagates: librdkafka keeps retrying, and
    the receiver stays not ready (503) meanwhile.
    """

    def __init__(self, provider: AbstractTokenProvider) -> None:
        self.provider = provider

    def __call__(self, _config: str | None) -> tuple[str, float, str, dict[str, str]]:
        token: str = asyncio.run(self.provider.token())
        extensions: dict[str, str] = dict(self.provider.extensions())
        return token, time.time() + OAUTH_REFRESH_S, "", extensions

    def __repr__(self) -> str:
        return f"OAuthCallback({self.provider!r})"


def rdkafka_security_config(settings: Settings) -> dict[str, Any]:
    """The ``security.protocol``, ``ssl.*`` and ``sasl.*`` properties (and ``oauth_cb``).

    Raises ConfigError exactly where the aiokafka options would (same checks, same text).
    """
    options = kafka_client_options(settings)  # validates; builds the token provider
    protocol = settings.kafka_security_protocol
    config: dict[str, Any] = {"security.protocol": protocol}
    if protocol in _TLS_PROTOCOLS:
        config["enable.ssl.certificate.verification"] = True
        config["ssl.endpoint.identification.algorithm"] = "https"
        ca = settings.kafka_ssl_ca_file
        config["ssl.ca.location"] = str(ca) if ca is not None else "probe"
        cert = settings.kafka_ssl_cert_file
        if cert is not None:
            config["ssl.certificate.location"] = str(cert)
            key = settings.kafka_ssl_key_file
            config["ssl.key.location"] = str(key if key is not None else cert)
            password = settings.kafka_ssl_key_password
            if password is not None and password.get_secret_value():
                config["ssl.key.password"] = password.get_secret_value()
    if protocol in _SASL_PROTOCOLS:
        config["sasl.mechanisms"] = options["sasl_mechanism"]
        if options["sasl_mechanism"] == "OAUTHBEARER":
            config["oauth_cb"] = OAuthCallback(options["sasl_oauth_token_provider"])
        else:
            config["sasl.username"] = options["sasl_plain_username"]
            config["sasl.password"] = options["sasl_plain_password"]
    return config
