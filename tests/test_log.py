"""Logging never carries personal data."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator

import pytest
import structlog

from wa_bridge.errors import CrmRejected, InvalidEvent
from wa_bridge.log import (
    configure_logging,
    format_exception,
    get_logger,
    hash_key,
    mask_numbers,
    redact,
    safe_message,
)

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


# --- exceptions: the traceback stays, the data in its messages does not -------------------

NAME = "Renata Olvera"


def _raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:
        return caught


def test_a_bugs_traceback_keeps_frames_and_classes_but_not_the_values_in_its_messages() -> None:
    def lookup(book: dict[str, str], key: str) -> str:
        return book[key]

    try:
        try:
            lookup({}, PHONE)
        except KeyError as exc:
            record = {"phone_e164": PHONE, "name": NAME, "body": TEXT}
            raise RuntimeError(f"cannot write {record} for {PHONE[1:]}") from exc
    except RuntimeError as exc:
        rendered = format_exception(exc)
    assert PHONE[-8:] not in rendered and NAME not in rendered and TEXT not in rendered
    assert "in lookup" in rendered and "return book[key]" in rendered  # where it happened
    assert "KeyError: '…'" in rendered
    assert "The above exception was the direct cause" in rendered
    assert "RuntimeError: cannot write {'…': '…', '…': '…', '…': '…'} for [number]" in rendered


def test_groups_contexts_and_notes_are_made_safe_too() -> None:
    inner = _raised(ValueError(f"bad number {PHONE}"))
    inner.add_note(f"while writing '{NAME}'")
    try:
        try:
            raise inner
        except ValueError:
            raise ExceptionGroup("batch", [_raised(KeyError(NAME)), TypeError(TEXT[:5])])  # noqa: B904
    except ExceptionGroup as exc:
        rendered = format_exception(exc)
    assert PHONE[-8:] not in rendered and NAME not in rendered
    assert "During handling of the above exception" in rendered
    assert "ValueError: bad number [number]" in rendered
    assert "while writing '…'" in rendered
    assert "KeyError: '…'" in rendered and "| TypeError: mi pe" in rendered


def test_our_errors_keep_their_message_and_never_show_the_crms_words() -> None:
    error = CrmRejected(
        "hubspot: upsert_contact got HTTP 400 (rejected; see crm_error)",
        status_code=400,
        crm_error=f"Property values were not valid: '{PHONE}' '{NAME}'",
    )
    assert safe_message(error) == "hubspot: upsert_contact got HTTP 400 (rejected; see crm_error)"
    assert "crm_error" in format_exception(_raised(error)) and NAME not in format_exception(error)
    assert safe_message(InvalidEvent(f"contact {PHONE} on 2026-06-10")) == (
        "contact [number] on 2026-06-10"
    )
    assert mask_numbers("+52 1 (55) 1234-5678, 55 1234 5678, HTTP 503") == (
        "[number], [number], HTTP 503"
    )
    assert mask_numbers("broker 192.168.100.200:9092") == "broker 192.168.100.200:9092"


def test_stdlib_logging_renders_exceptions_safely(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers = []  # as in a process: nothing installed a handler yet
    try:
        configure_logging(fmt="json", level="INFO")
        try:
            {}[PHONE]
        except KeyError:
            logging.getLogger("some.library").exception("failed for %s", PHONE)
        err = capsys.readouterr().err
    finally:
        root.handlers = handlers
        root.setLevel(level)
    assert "ERROR some.library failed for [number]" in err
    assert "KeyError: '…'" in err and PHONE[-8:] not in err


def test_warnings_go_through_the_masking_log_handler(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers = []
    logging.captureWarnings(False)  # as in a fresh process
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            configure_logging(fmt="json", level="INFO")
            message = f"Expected `str` but got `int` with value `{PHONE[1:]}`"
            warnings.warn(message, UserWarning, stacklevel=1)
            logging.captureWarnings(False)
        err = capsys.readouterr().err
    finally:
        root.handlers = handlers
        root.setLevel(level)
    assert "WARNING py.warnings" in err and "with value `[number]`" in err
    assert PHONE[-8:] not in err


def test_a_database_errors_detail_line_is_blanked() -> None:
    error = RuntimeError(
        'new row for relation "crm_contacts" violates check constraint "name_length"\n'
        f"DETAIL:  Failing row contains (7, {NAME}, MX).\n"
        "[SQL: INSERT INTO crm_contacts VALUES ($1, $2, $3)]"
    )
    shown = safe_message(error)
    assert NAME not in shown
    assert "DETAIL:  …" in shown and "[SQL: INSERT INTO crm_contacts" in shown
