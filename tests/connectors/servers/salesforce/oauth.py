"""Salesforce's OAuth 2.0 token endpoint: client credentials and the JWT bearer flow.

``POST /services/oauth2/token`` (form-encoded):

- ``grant_type=client_credentials`` with ``client_id``/``client_secret`` (the connected
  app's consumer key and secret; the app's run-as user is the API user);
- ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` with ``assertion``: an RS256
  JWT signed with the key whose certificate the app holds, ``iss`` = consumer key,
  ``sub`` = the user's username, ``aud`` = the login URL, ``exp`` in the future.

Success: ``{access_token, instance_url, id, token_type: "Bearer", issued_at, signature}``
(``id`` = ``<login>/id/<org id>/<user id>``; ``signature`` = base64 HMAC-SHA256 of ``id``
+ ``issued_at`` keyed by the consumer secret). Failures are 400 ``{"error",
"error_description"}``: ``invalid_grant`` for a bad assertion or user,
``invalid_client_id``/``invalid_client`` for a bad consumer key/secret. Sessions expire
after ``session_lifetime_s`` (then the API answers 401 ``INVALID_SESSION_ID``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .._tokens import TokenBook
from ..base import Reply

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_key_pair() -> tuple[str, str]:
    """A new RSA key pair as PEM text: (private key, public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def jwt_assertion(
    private_key_pem: str,
    *,
    iss: str,
    sub: str,
    aud: str,
    exp: float | None = None,
    alg: str = "RS256",
) -> str:
    """An RS256-signed JWT bearer assertion (for tests of the JWT flow)."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    header = _b64url(orjson.dumps({"alg": alg, "typ": "JWT"}))
    claims = {"iss": iss, "sub": sub, "aud": aud, "exp": int(exp or time.time() + 180)}
    signing_input = f"{header}.{_b64url(orjson.dumps(claims))}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def oauth_error(error: str, description: str) -> Reply:
    return Reply(400, {"error": error, "error_description": description})


@dataclass
class SalesforceOAuth:
    clock: Callable[[], float]
    wall: Callable[[], float]
    org_id: str
    user_id: str
    username: str = "integration@wa-bridge.test"
    client_id: str = "wa-bridge-consumer-key"
    client_secret: str = "wa-bridge-consumer-secret"
    client_credentials_enabled: bool = True
    session_lifetime_s: float = 7200.0
    login_url: str = ""  # the JWT audience; "" means the server's own URL
    sessions: TokenBook = field(init=False)
    _keys: list[str] = field(default_factory=list)  # trusted public keys (PEM)
    _pair: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        self.sessions = TokenBook(self.clock)

    @property
    def private_key_pem(self) -> str:
        """The private key of a key pair the connected app trusts (made on first use)."""
        if self._pair is None:
            self._pair = make_key_pair()
            self._keys.append(self._pair[1])
        return self._pair[0]

    def trust(self, public_key_pem: str) -> None:
        """Upload a certificate's public key to the connected app."""
        self._keys.append(public_key_pem)

    def reset(self) -> None:
        self.sessions.clear()
        self.client_credentials_enabled = True
        self.session_lifetime_s = 7200.0
        self.login_url = ""

    def token(self, form: dict[str, str], *, server_url: str) -> Reply:
        login = self.login_url or server_url
        grant = form.get("grant_type")
        if grant == "client_credentials":
            refused = self._client_credentials(form)
        elif grant == JWT_BEARER:
            refused = self._jwt(form.get("assertion", ""), login)
        else:
            return oauth_error("unsupported_grant_type", "grant type not supported")
        if refused is not None:
            return refused
        issued_at = str(int(self.wall() * 1000))
        identity = f"{login}/id/{self.org_id}/{self.user_id}"
        digest = hmac.new(
            self.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
        ).digest()
        body: dict[str, Any] = {
            "access_token": self.sessions.issue(self.session_lifetime_s, prefix=f"{self.org_id}!"),
            "instance_url": server_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": base64.b64encode(digest).decode(),
            "scope": "api",
        }
        return Reply(200, body)

    def _client_credentials(self, form: dict[str, str]) -> Reply | None:
        if form.get("client_id") != self.client_id:
            return oauth_error("invalid_client_id", "client identifier invalid")
        if form.get("client_secret") != self.client_secret:
            return oauth_error("invalid_client", "invalid client credentials")
        if not self.client_credentials_enabled:
            return oauth_error("invalid_grant", "no client credentials user enabled")
        return None

    def _jwt(self, assertion: str, login: str) -> Reply | None:
        parts = assertion.split(".")
        if len(parts) != 3:
            return oauth_error("invalid_grant", "invalid assertion")
        try:
            header = orjson.loads(_b64url_decode(parts[0]))
            claims = orjson.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, orjson.JSONDecodeError):
            return oauth_error("invalid_grant", "invalid assertion")
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            return oauth_error("invalid_grant", "invalid assertion: alg must be RS256")
        if not self._signed(f"{parts[0]}.{parts[1]}".encode(), signature):
            return oauth_error("invalid_grant", "invalid assertion: bad signature")
        if not isinstance(claims, dict) or claims.get("iss") != self.client_id:
            return oauth_error("invalid_client_id", "client identifier invalid")
        if claims.get("aud") != login:
            return oauth_error("invalid_grant", f"audience is invalid (expected {login})")
        if claims.get("sub") != self.username:
            return oauth_error("invalid_grant", "user hasn't approved this consumer")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= self.wall():
            return oauth_error("invalid_grant", "expired assertion")
        return None

    def _signed(self, data: bytes, signature: bytes) -> bool:
        for pem in self._keys:
            key = serialization.load_pem_public_key(pem.encode())
            if not isinstance(key, rsa.RSAPublicKey):
                continue
            try:
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                continue
            return True
        return False
