"""Sign-in that lasts: OAuth 2.0 access tokens, fetched, renewed and applied per request.

:class:`OAuthAuth` is an ``httpx.Auth`` for a CRM client. It gets a token on first use
(``fetch``, one of the grants below), renews it shortly before it expires (when the token
answer said ``expires_in``) and when the CRM answers 401 (an expired or revoked session:
renewed once per request, then the 401 is the answer), and sends each request to the
token's ``instance_url`` when the answer named one (the API's address comes with the
token, so no base URL needs configuring). Concurrent requests share one renewal.

Grants (RFC 6749, RFC 7523), each a :data:`TokenFetch` made by a function here:

- :func:`refresh_token_grant`: ``grant_type=refresh_token`` with the client's id and
  secret (a refresh token given back replaces the old one);
- :func:`client_credentials_grant`: ``grant_type=client_credentials``;
- :func:`jwt_bearer_grant`: ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``
  with an RS256 assertion (``iss`` client id, ``sub`` user, ``aud`` the login site,
  ``exp`` three minutes ahead) signed with the configured private key.

Token requests are form-encoded POSTs through :func:`~wa_bridge.connectors.http.send`, so
their failures are our errors: a refused sign-in is CrmRejected (with the CRM's own
``error_description``), an unreachable token endpoint CrmUnavailable. Tokens, secrets and
assertions are never logged or put in an error message.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Final

import httpx
import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import SecretStr

from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.connectors.http import ErrorDialect, send
from wa_bridge.errors import ConfigError, CrmUnavailable
from wa_bridge.log import get_logger

__all__ = [
    "JWT_BEARER_GRANT",
    "REFRESH_MARGIN_S",
    "OAuthAuth",
    "RsaSigner",
    "Token",
    "TokenFetch",
    "client_credentials_grant",
    "jwt_bearer_grant",
    "refresh_token_grant",
    "require",
]

JWT_BEARER_GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# A token is renewed this long before its ``expires_in`` runs out (at most half of it).
REFRESH_MARGIN_S: Final = 60.0
JWT_LIFETIME_S: Final = 180  # Salesforce accepts assertions valid for up to 3 minutes

log = get_logger("crm_auth")


def require(flow: str, values: dict[str, str | SecretStr | None]) -> dict[str, str]:
    """``values`` (variable name → setting) as plain text; raises ConfigError naming every
    missing one (``flow`` says which sign-in needs them). Secrets stay out of messages."""
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ConfigError(f"{flow} needs {', '.join(missing)}")
    return {
        name: value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        for name, value in values.items()
    }


@dataclass(frozen=True, slots=True)
class Token:
    """One access token and what its answer said; ``expires_at`` on the clock's
    monotonic time (None: no expiry given, renewed on 401 only)."""

    access_token: str = field(repr=False)
    expires_at: float | None = None
    instance_url: str | None = None
    identity: str | None = None  # the answer's ``id`` (Salesforce: …/id/<org>/<user>)
    refresh_token: str | None = field(default=None, repr=False)


TokenFetch = Callable[[], Awaitable[Token]]


class _SignInDialect(ErrorDialect):
    """How a token endpoint words a refused sign-in."""

    def message(self, body: Any) -> str | None:
        """RFC 6749's ``{"error", "error_description"}``, or a ``{"status", "message"}``
        body."""
        if not isinstance(body, dict):
            return None
        error = body.get("error") or body.get("status")
        text = body.get("error_description") or body.get("message")
        parts = [str(p) for p in (error, text) if p]
        return ": ".join(parts) or None

    def hint(self, status: int, body: Any) -> str | None:
        if 400 <= status < 500 and status not in (408, 425, 429):
            return (
                "sign-in refused: check WA_BRIDGE_CRM_CLIENT_ID, the secret, refresh token or "
                "key, WA_BRIDGE_CRM_USERNAME and WA_BRIDGE_CRM_LOGIN_URL"
            )
        return None


async def _token_request(
    token_url: str,
    form: dict[str, str],
    *,
    vendor: str,
    timeout_s: float,
    clock: Clock,
) -> Token:
    """POST ``form`` to ``token_url``; the token of its answer."""
    dialect = _SignInDialect(vendor)
    timeout = httpx.Timeout(timeout_s)
    async with httpx.AsyncClient(timeout=timeout, headers={"Accept": "application/json"}) as c:
        response = await send(c, "POST", token_url, dialect=dialect, action="sign in", form=form)
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise CrmUnavailable(f"{vendor}: the token endpoint answered no JSON") from exc
    access = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(access, str) or not access:
        raise CrmUnavailable(f"{vendor}: the token endpoint answered no access_token")
    expires_in = body.get("expires_in")
    expires_at = None
    if isinstance(expires_in, int | float) and expires_in > 0:
        expires_at = clock.monotonic() + float(expires_in)
    return Token(
        access_token=access,
        expires_at=expires_at,
        instance_url=_text(body.get("instance_url")),
        identity=_text(body.get("id")),
        refresh_token=_text(body.get("refresh_token")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def refresh_token_grant(
    token_url: str,
    *,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    vendor: str,
    timeout_s: float,
    clock: Clock = SYSTEM_CLOCK,
) -> TokenFetch:
    """Tokens by ``grant_type=refresh_token``; a new refresh token in an answer is used
    from then on."""
    current = refresh_token

    async def fetch() -> Token:
        nonlocal current
        form = {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": current,
        }
        token = await _token_request(
            token_url, form, vendor=vendor, timeout_s=timeout_s, clock=clock
        )
        current = token.refresh_token or current
        return token

    return fetch


def client_credentials_grant(
    token_url: str,
    *,
    client_id: str,
    client_secret: str,
    vendor: str,
    timeout_s: float,
    clock: Clock = SYSTEM_CLOCK,
) -> TokenFetch:
    """Tokens by ``grant_type=client_credentials`` (the app acts as its run-as user)."""
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": client_secret,
    }

    async def fetch() -> Token:
        return await _token_request(
            token_url, form, vendor=vendor, timeout_s=timeout_s, clock=clock
        )

    return fetch


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class RsaSigner:
    """Signs JWT assertions with an RSA private key (RS256). Raises ConfigError for a key
    that is not an unencrypted PEM RSA private key (the message never quotes it)."""

    def __init__(self, private_key_pem: str, *, setting: str) -> None:
        try:
            key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"{setting}: not an unencrypted PEM private key ({type(exc).__name__})"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError(f"{setting}: the JWT bearer flow needs an RSA key (RS256)")
        self._key = key

    def assertion(self, claims: dict[str, Any]) -> str:
        header = _b64url(orjson.dumps({"alg": "RS256", "typ": "JWT"}))
        signing_input = f"{header}.{_b64url(orjson.dumps(claims))}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


def jwt_bearer_grant(
    token_url: str,
    *,
    client_id: str,
    signer: RsaSigner,
    username: str,
    audience: str,
    vendor: str,
    timeout_s: float,
    clock: Clock = SYSTEM_CLOCK,
) -> TokenFetch:
    """Tokens by the JWT bearer grant: a fresh assertion (``exp`` three minutes from the
    clock's now) per request."""

    async def fetch() -> Token:
        claims = {
            "iss": client_id,
            "sub": username,
            "aud": audience,
            "exp": int(clock.now().timestamp()) + JWT_LIFETIME_S,
        }
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": signer.assertion(claims)}
        return await _token_request(
            token_url, form, vendor=vendor, timeout_s=timeout_s, clock=clock
        )

    return fetch


@dataclass(eq=False, repr=False)
class OAuthAuth(httpx.Auth):
    """Bearer tokens from ``fetch``, kept fresh (see the module docstring). For an
    ``httpx.AsyncClient`` only (a sync client would send the request unsigned)."""

    fetch: TokenFetch
    _: KW_ONLY
    vendor: str
    clock: Clock = SYSTEM_CLOCK
    refresh_margin_s: float = REFRESH_MARGIN_S
    _token: Token | None = field(init=False, default=None)
    _issued_at: float = field(init=False, default=0.0)
    _lock: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)
    renewals: int = field(init=False, default=0)  # tokens fetched so far (tests, metrics)

    @property
    def token(self) -> Token | None:
        """The current token (None before the first request)."""
        return self._token

    async def current(self) -> Token:
        """The token to send now: fetched on first use and shortly before it expires."""
        token = self._token
        if token is None or self._expiring(token):
            token = await self._renew(token, "expiry" if token else "first use")
        return token

    def _expiring(self, token: Token) -> bool:
        if token.expires_at is None:
            return False
        lifetime = token.expires_at - self._issued_at
        margin = min(self.refresh_margin_s, lifetime / 2)
        return self.clock.monotonic() >= token.expires_at - margin

    async def _renew(self, stale: Token | None, reason: str) -> Token:
        """A new token, unless another request renewed ``stale`` meanwhile."""
        async with self._lock:
            if self._token is not None and self._token is not stale:
                return self._token
            started = self.clock.monotonic()
            token = await self.fetch()
            self._token, self._issued_at = token, started
            self.renewals += 1
        log.info("crm_token_renewed", connector=self.vendor, reason=reason)
        return token

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.current()
        _sign(request, token)
        response = yield request
        if response.status_code == 401:
            token = await self._renew(token, "401")
            _sign(request, token)
            yield request


def _sign(request: httpx.Request, token: Token) -> None:
    """Bearer ``token`` on ``request``, sent to the token's instance when it named one."""
    request.headers["Authorization"] = f"Bearer {token.access_token}"
    if token.instance_url:
        instance = httpx.URL(token.instance_url)
        if (instance.scheme, instance.host, instance.port) != (
            request.url.scheme,
            request.url.host,
            request.url.port,
        ):
            request.url = request.url.copy_with(
                scheme=instance.scheme, host=instance.host, port=instance.port
            )
            request.headers["Host"] = instance.netloc.decode("ascii")
