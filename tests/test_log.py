"""Logging never carries personal data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from wa_bridge.log import configure_logging, get_logger, hash_key, redact

PHONE = "+5215512345678"
TEXT = "mi pedido no llegó"


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """Put back the configuration the tests after these run under. ``reset_defaults``
    alone leaves structlog on its own default (rich tracebacks with frame locals) for
    every later test whose loggers were made at import: slow, and not our output."""
    configured, saved = structlog.is_configured(), structlog.get_config()
    yield
    structlog.reset_defaults()
    if configured:
        structlog.configure(**saved)


def test_redact_drops_denied_keys_at_any_depth() -> None:
    out = redact(
        {
            "event_id": "wa:messages:wamid.X",
            "contact": {"phone_e164": PHONE, "profile_name": "Ana", "country": "MX"},
            "items": [{"text": TEXT}],
            "contact_key": PHONE,
        }
    )
    flat = repr(out)
    assert PHONE not in flat
    assert TEXT not in flat
    assert "Ana" not in flat
    assert out["event_id"] == "wa:messages:wamid.X"
    assert out["contact"]["country"] == "MX"
    assert out["contact_key"] == hash_key(PHONE)


def test_hash_key_is_stable_and_short() -> None:
    assert hash_key(PHONE) == hash_key(PHONE)
    assert hash_key(PHONE) != hash_key("+525512345679")
    assert len(hash_key(PHONE)) == 14


def test_long_values_are_truncated() -> None:
    out = redact({"detail": "x" * 1000})
    assert len(out["detail"]) < 250


def test_configured_logger_output_has_no_pii(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(fmt="json", level="INFO")
    try:
        get_logger("test").info(
            "event_published", contact_key=PHONE, wa_id="5215512345678", text=TEXT, offset=3
        )
        err = capsys.readouterr().err
    finally:
        structlog.reset_defaults()
    assert "event_published" in err
    assert '"offset": 3' in err
    assert "5512345678" not in err
    assert TEXT not in err


def test_unconfigured_logging_is_redacted_and_prints_no_frame_locals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    structlog.reset_defaults()  # as in a library caller that never configured logging

    def fails(phone: str) -> None:
        raise RuntimeError("boom")

    number = "+52155" + "12345678"  # built here so the source line shows no number
    try:
        try:
            fails(number)
        except RuntimeError as exc:
            get_logger("test").warning("retrying_in_place", exc_info=exc, wa_id=number)
        err = capsys.readouterr().err
    finally:
        structlog.reset_defaults()
    assert "RuntimeError: boom" in err
    assert "12345678" not in err
