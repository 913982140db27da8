"""What the worker reads from an inbox event: the outcome value by the shared decimal rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from wa_bridge.events import CanonicalEvent
from wa_bridge.worker.facts import inbox_fact_of


def _converted(value: object) -> CanonicalEvent:
    return CanonicalEvent(
        id="inbox:evt-1",
        type="inbox.conversation.converted",
        source="inbox:106540352242922",
        time="2026-06-10T16:00:00Z",
        data={"outcome": "won", "value": value, "currency": "MXN"},
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1249.90", Decimal("1249.90")),  # what the inbox writes
        (1000, Decimal("1000")),
        (None, None),
        ("NaN", None),
        (True, None),
        # The decimal rules every reader shares (wa_bridge.normalize.decimals), where the
        # worker's own differed: a float was refused (the inbox and the mapping took it);
        (0.1, Decimal("0.1")),
        # text and numbers no CRM field or store column holds were taken (the inbox and the
        # order refused them): now the case gets no value, as for any unreadable one.
        ("1e999999", None),
        ("1" * 41, None),
        (10**45, None),
    ],
)
def test_the_outcome_value(value: object, expected: Decimal | None) -> None:
    fact = inbox_fact_of(_converted(value))
    assert fact is not None
    assert fact.value == expected
    assert (fact.outcome, fact.currency) == ("won", "MXN")
