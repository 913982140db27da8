"""The one dead-letter record: built by ``dead_letter_of`` for the worker and for replay."""

from __future__ import annotations

from datetime import UTC, datetime

from wa_bridge.errors import CrmRejected, CrmUnavailable
from wa_bridge.worker.dlq import MAX_MESSAGE_CHARS, dead_letter_of

AT = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def test_a_crm_rejection_keeps_the_crm_message_and_the_origin() -> None:
    error = CrmRejected("contact refused", status_code=400, crm_error="email is invalid")
    letter = dead_letter_of(
        error,
        event_id="ev-1",
        event_type="whatsapp.message.received",
        contact_key="+5215512345678",
        payload=b"{}",
        attempts=2,
        failed_at=AT,
        origin=("wa.events", 3, 42),
    )
    assert (letter.error_class, letter.error_message) == ("CrmRejected", "contact refused")
    assert letter.crm_error == "email is invalid"
    assert (letter.topic, letter.partition, letter.offset) == ("wa.events", 3, 42)
    assert (letter.attempts, letter.failed_at) == (2, AT)


def test_a_bug_is_an_unexpected_error_named_by_its_type() -> None:
    letter = dead_letter_of(
        KeyError("seq"),
        event_id="ev-1",
        event_type="whatsapp.message.received",
        contact_key=None,
        payload=b"{}",
        attempts=1,
        failed_at=AT,
        context="replay",
    )
    assert letter.error_class == "UnexpectedError"
    assert letter.error_message == "replay: KeyError: 'seq'"
    assert letter.crm_error is None
    assert (letter.topic, letter.partition, letter.offset) == (None, None, None)


def test_the_message_is_cut_to_its_limit() -> None:
    letter = dead_letter_of(
        CrmUnavailable("x" * 2000),
        event_id="ev-1",
        event_type="whatsapp.message.received",
        contact_key=None,
        payload=b"{}",
        attempts=1,
        failed_at=AT,
    )
    assert letter.error_message == "x" * MAX_MESSAGE_CHARS
