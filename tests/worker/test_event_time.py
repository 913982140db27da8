"""An event's time: Meta's ``time``, else our receipt time, never silently "now"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from wa_bridge.errors import InvalidEvent
from wa_bridge.events import CanonicalEvent
from wa_bridge.worker.facts import event_time


def _event(time: str, recvtime: str | None) -> CanonicalEvent:
    return CanonicalEvent(
        id="wa:messages:wamid.T1",
        type="whatsapp.message.received",
        source="waba/1",
        time=time,
        data={},
        recvtime=recvtime,
    )


def test_meta_time_wins_and_a_naive_time_is_utc() -> None:
    assert event_time(_event("2026-06-10T12:00:00-05:00", "2026-06-10T17:00:09Z")) == datetime(
        2026, 6, 10, 12, tzinfo=timezone(timedelta(hours=-5))
    )
    assert event_time(_event("2026-06-10T12:00:00", None)) == datetime(2026, 6, 10, 12, tzinfo=UTC)


def test_an_unreadable_time_falls_back_to_the_receipt_time() -> None:
    assert event_time(_event("yesterday", "2026-06-10T17:00:09Z")) == datetime(
        2026, 6, 10, 17, 0, 9, tzinfo=UTC
    )


@pytest.mark.parametrize("recvtime", [None, "", "soon"])
def test_no_readable_time_is_an_invalid_event(recvtime: str | None) -> None:
    with pytest.raises(InvalidEvent, match=r"wamid\.T1"):
        event_time(_event("yesterday", recvtime))
