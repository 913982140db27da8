"""SASL/OAUTHBEARER token providers for aiokafka.

aiokafka asks its token provider for a token whenever it opens an authenticated
connection. Two sources:

- :class:`FileTokenProvider` reads a file that something else keeps fresh (a sidecar, a
  projected service-account token, a cron job). It is re-read on every connection.
- :class:`ClientCredentialsTokenProvider` runs the OAuth 2 client-credentials grant
  against a token endpoint (Confluent Cloud with an identity provider, Redpanda Cloud,
  Keycloak, ...) and keeps the token until 80 % of its lifetime has passed.

Both send ``extensions`` (SASL extensions, RFC 7628: Confluent Cloud wants its logical
cluster and identity pool there) with the token. Failures are raised as aiokafka's
``KafkaConnectionError``: aiokafka treats them like a
broker it could not reach (the receiver answers 503 and keeps reconnecting). Tokens and
client secrets are never logged or put in an error message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

import httpx
import orjson
from aiokafka.abc import AbstractTokenProvider
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr

__all__ = ["ClientCredentialsTokenProvider", "FileTokenProvider"]

DEFAULT_TIMEOUT_S: Final = 10.0
# Renew once this share of a token's lifetime has passed.
_RENEW_AT_SHARE: Final = 0.8


class FileTokenProvider(AbstractTokenProvider):  # type: ignore[misc]  # aiokafka is untyped
    """The token is the content of ``path`` (surrounding whitespace dropped)."""

    def __init__(self, path: Path, *, extensions: Mapping[str, str] | None = None) -> None:
        self.path = path
        self._extensions = dict(extensions or {})

    def extensions(self) -> dict[str, str]:
        return dict(self._extensions)

    async def token(self) -> str:
        try:
            text = await asyncio.to_thread(self.path.read_text, encoding="utf-8")
        except OSError as exc:
            raise KafkaConnectionError(
                f"cannot read the OAuth token file {self.path}: {exc.strerror}"
            ) from exc
        token = text.strip()
        if not token:
            raise KafkaConnectionError(f"the OAuth token file {self.path} is empty")
        return token

    def __repr__(self) -> str:
        return f"FileTokenProvider({str(self.path)!r})"


class ClientCredentialsTokenProvider(AbstractTokenProvider):  # type: ignore[misc]  # aiokafka is untyped
    """OAuth 2 client-credentials grant (RFC 6749 §4.4), client authenticated by HTTP Basic.

    One request per token lifetime: concurrent connections share the token being fetched.
    A token without ``expires_in`` is used for one connection only.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        scope: str | None = None,
        extensions: Mapping[str, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self._extensions = dict(extensions or {})
        self._timeout = httpx.Timeout(timeout_s)
        self._clock = clock
        self._token: str | None = None
        self._renew_at = float("-inf")
        self._lock = asyncio.Lock()

    def extensions(self) -> dict[str, str]:
        return dict(self._extensions)

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token, lifetime_s = await self._fetch()
                self._renew_at = self._clock() + lifetime_s * _RENEW_AT_SHARE
            return self._token

    async def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        auth = httpx.BasicAuth(self.client_id, self._client_secret.get_secret_value())
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.post(self.token_url, data=form, auth=auth)
        except httpx.HTTPError as exc:
            raise KafkaConnectionError(
                f"OAuth token endpoint {self.token_url}: {type(exc).__name__}"
            ) from exc
        return _parse_token_response(self.token_url, response)

    def __repr__(self) -> str:
        return f"ClientCredentialsTokenProvider({self.token_url!r}, client_id={self.client_id!r})"


def _parse_token_response(url: str, response: httpx.Response) -> tuple[str, float]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        body = {}
    if response.status_code != 200:
        # RFC 6749 §5.2: "error" is a code such as invalid_client; it holds no secret.
        code = body.get("error")
        reason = f" ({code})" if isinstance(code, str) else ""
        raise KafkaConnectionError(
            f"OAuth token endpoint {url} answered {response.status_code}{reason}"
        )
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise KafkaConnectionError(f"OAuth token endpoint {url} sent no access_token")
    expires_in = body.get("expires_in")
    lifetime_s = float(expires_in) if isinstance(expires_in, int | float) else 0.0
    return token, max(lifetime_s, 0.0)
