"""Admin tokens: role:token entries, constant-time lookup, bad config refused."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import SecretStr

from wa_bridge.auth import TokenBook, token_digest
from wa_bridge.errors import ConfigError

OPERATOR = "operator-token-0123456789"
VIEWER = "viewer-token-0123456789ab"


def book() -> TokenBook:
    return TokenBook([SecretStr(f"operator:{OPERATOR}"), SecretStr(f"viewer:{VIEWER}")])


def test_lookup_finds_role() -> None:
    op = book().lookup(OPERATOR)
    assert op is not None and op.role == "operator"
    viewer = book().lookup(VIEWER)
    assert viewer is not None and viewer.role == "viewer"


def test_roles_are_ordered() -> None:
    op, viewer = book().lookup(OPERATOR), book().lookup(VIEWER)
    assert op is not None and viewer is not None
    assert op.may("viewer") and op.may("operator")
    assert viewer.may("viewer") and not viewer.may("operator")


def test_unknown_token_is_none_and_actor_hides_token() -> None:
    assert book().lookup("nope") is None
    op = book().lookup(OPERATOR)
    assert op is not None and OPERATOR not in op.actor


@pytest.mark.parametrize("entry", ["operator", "root:0123456789abcdefgh", "viewer:short"])
def test_bad_entries_are_config_errors(entry: str) -> None:
    with pytest.raises(ConfigError, match="WA_BRIDGE_ADMIN_TOKENS"):
        TokenBook([SecretStr(entry)])


def test_inbox_role_may_only_post_inbox_events() -> None:
    inbox_token = "inbox-token-0123456789abc"
    tokens = TokenBook([SecretStr(f"inbox:{inbox_token}"), SecretStr(f"operator:{OPERATOR}")])
    inbox, op, viewer = tokens.lookup(inbox_token), tokens.lookup(OPERATOR), book().lookup(VIEWER)
    assert inbox is not None and inbox.role == "inbox"
    assert op is not None and viewer is not None
    assert inbox.may("inbox")
    assert not inbox.may("viewer") and not inbox.may("operator")
    assert not op.may("inbox") and not viewer.may("inbox")


def test_hashed_entry_admits_the_token_it_hashes() -> None:
    digest = hashlib.sha256(OPERATOR.encode()).hexdigest()
    assert token_digest(OPERATOR) == digest
    tokens = TokenBook([SecretStr(f"operator:sha256:{digest}")])
    found = tokens.lookup(OPERATOR)
    assert found is not None and found.role == "operator" and OPERATOR not in found.actor
    # the digest itself is not a token
    assert tokens.lookup(digest) is None and tokens.lookup(f"sha256:{digest}") is None


def test_hashed_and_plain_entries_mix_and_uppercase_hex_is_accepted() -> None:
    digest = hashlib.sha256(VIEWER.encode()).hexdigest().upper()
    tokens = TokenBook([SecretStr(f"operator:{OPERATOR}"), SecretStr(f"viewer:sha256:{digest}")])
    op, viewer = tokens.lookup(OPERATOR), tokens.lookup(VIEWER)
    assert op is not None and op.role == "operator"
    assert viewer is not None and viewer.role == "viewer"


@pytest.mark.parametrize(
    "entry",
    ["viewer:sha256:abc", "viewer:sha256:" + "g" * 64, "viewer:sha256:" + "a" * 63],
)
def test_malformed_hashes_are_config_errors(entry: str) -> None:
    with pytest.raises(ConfigError, match="sha256:<64 hex digits>"):
        TokenBook([SecretStr(entry)])
