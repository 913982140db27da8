"""Meta's webhook signature: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``.

The HMAC is computed over the exact bytes received, with the app secret as key. Several
secrets may be configured so one can rotate without downtime: a signature made with any
of them is accepted. Comparisons are constant-time.

Hot path (:class:`SignatureVerifier`): HMAC-SHA256 is ``H((K ^ opad) || H((K ^ ipad) ||
body))`` (RFC 2104). The two pads depend on the secret alone, so each secret's inner and
outer SHA-256 states are computed once and copied per request: one copy and one update
each, instead of ``hmac.new`` keying both from scratch; and the header's hex is decoded
once and compared with the raw digest.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any, Final

__all__ = [
    "SIGNATURE_HEADER",
    "SIGNATURE_PREFIX",
    "SignatureVerifier",
    "sign",
    "verify_signature",
    "verify_token",
]

SIGNATURE_HEADER: Final = "x-hub-signature-256"
SIGNATURE_PREFIX: Final = "sha256="
_PREFIX: Final = SIGNATURE_PREFIX.encode()
_HEX_DIGEST_CHARS: Final = 64
_BLOCK: Final = 64  # SHA-256's block size in bytes


def sign(body: bytes, secret: bytes) -> str:
    """The header value Meta would send for ``body`` signed with ``secret``."""
    return SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _pads(secret: bytes) -> tuple[Any, Any]:
    """SHA-256 states after ``K ^ ipad`` and ``K ^ opad`` (the key as RFC 2104 pads it)."""
    key = hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret
    key = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(k ^ 0x36 for k in key))
    outer = hashlib.sha256(bytes(k ^ 0x5C for k in key))
    return inner, outer


def _given_digest(header: bytes | None) -> bytes | None:
    """The 32 bytes a well-formed header carries, else None."""
    if header is None:
        return None
    value = header.strip()
    if value[: len(_PREFIX)].lower() != _PREFIX:
        return None
    hex_part = value[len(_PREFIX) :]
    if len(hex_part) != _HEX_DIGEST_CHARS:
        return None
    try:
        return bytes.fromhex(hex_part.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


class SignatureVerifier:
    """``verify_signature`` for a fixed set of secrets, with their HMAC pads precomputed."""

    __slots__ = ("_pads",)

    def __init__(self, secrets: Iterable[bytes]) -> None:
        self._pads = tuple(_pads(secret) for secret in secrets)

    def __call__(self, body: bytes, header: bytes | None) -> bool:
        """True when ``header`` is a valid signature of ``body`` under one of the secrets.

        Every secret is tried (no early exit). A missing, malformed or wrong header is
        simply False.
        """
        given = _given_digest(header)
        if given is None:
            return False
        matched = False
        for inner_pad, outer_pad in self._pads:
            inner = inner_pad.copy()
            inner.update(body)
            outer = outer_pad.copy()
            outer.update(inner.digest())
            matched |= hmac.compare_digest(outer.digest(), given)
        return matched


def verify_signature(body: bytes, header: bytes | None, secrets: Iterable[bytes]) -> bool:
    """True when ``header`` is a valid signature of ``body`` under one of ``secrets``.

    Every secret is tried (no early exit on the first mismatch reveals which one matched
    only by the result). A missing, malformed or wrong header is simply False.
    """
    return SignatureVerifier(secrets)(body, header)


def verify_token(given: str, expected: str) -> bool:
    """Constant-time check of the GET handshake's ``hub.verify_token``; an empty token fails."""
    if not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
