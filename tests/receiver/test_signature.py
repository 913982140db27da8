"""The precomputed-pad HMAC check agrees with the standard library's HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from wa_bridge.receiver.signature import SignatureVerifier, sign, verify_signature


@given(secret=st.binary(min_size=1, max_size=200), body=st.binary(max_size=2000))
def test_a_signature_made_with_hmac_new_is_accepted(secret: bytes, body: bytes) -> None:
    # Secrets longer than SHA-256's 64-byte block are hashed first (RFC 2104): both sides.
    header = ("sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()).encode()
    assert SignatureVerifier([b"another-secret", secret])(body, header)
    assert SignatureVerifier([secret])(body, header.upper().replace(b"SHA256=", b"sha256="))
    assert not SignatureVerifier([secret + b"x"])(body, header)
    assert not SignatureVerifier([secret])(body + b" ", header)


def test_malformed_headers_are_false_not_errors() -> None:
    body, secret = b'{"object":"whatsapp_business_account"}', b"app-secret"
    good = sign(body, secret).encode()
    verify = SignatureVerifier([secret])
    assert verify(body, good) and verify(body, b"  " + good + b"\r\n")
    for header in (
        None,
        b"",
        b"sha256=",
        good[:-2],
        good + b"00",
        b"sha1=" + good[7:],
        good[:-2] + b"zz",
        good[:-2] + "é".encode(),
        good[:7] + b" " * 64,
    ):
        assert not verify(body, header), header
    assert not SignatureVerifier([])(body, good)
    assert verify_signature(body, good, [b"old", secret])
