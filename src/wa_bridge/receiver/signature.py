"""Meta's webhook signature: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``.

The HMAC is computed over the exact bytes received, with the app secret as key. Several
secrets may be configured so one can rotate without downtime: a signature made with any
of them is accepted. Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Final

__all__ = ["SIGNATURE_HEADER", "SIGNATURE_PREFIX", "sign", "verify_signature", "verify_token"]

SIGNATURE_HEADER: Final = "x-hub-signature-256"
SIGNATURE_PREFIX: Final = "sha256="
_HEX_DIGEST_CHARS: Final = 64


def sign(body: bytes, secret: bytes) -> str:
    """The header value Meta would send for ``body`` signed with ``secret``."""
    return SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: bytes | None, secrets: Iterable[bytes]) -> bool:
    """True when ``header`` is a valid signature of ``body`` under one of ``secrets``.

    Every secret is tried (no early exit on the first mismatch reveals which one matched
    only by the result). A missing, malformed or wrong header is simply False.
    """
    if header is None:
        return False
    value = header.strip()
    if value[: len(SIGNATURE_PREFIX)].lower() != SIGNATURE_PREFIX.encode():
        return False
    given = value[len(SIGNATURE_PREFIX) :].lower()
    if len(given) != _HEX_DIGEST_CHARS:
        return False
    matched = False
    for secret in secrets:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        matched |= hmac.compare_digest(expected, given)
    return matched


def verify_token(given: str, expected: str) -> bool:
    """Constant-time check of the GET handshake's ``hub.verify_token``; an empty token fails."""
    if not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
