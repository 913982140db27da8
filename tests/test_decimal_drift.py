"""Every reader of "a decimal as a string or a JSON number" takes the same values as the same
number (issue #8): an order item's price (normalize), the inbox's ``value`` (normalize), the
worker's outcome value (worker/facts) and a mapping's ``decimal`` field (mapping).

Each had its own rules once, so a value could be taken at the edge and dropped further
down. The verdicts below are written out, not computed by the shared parser, so the test
fails when any reader drifts from them, the shared one included.

The inbox's ``value`` and the worker's outcome value are *amounts*: a case keeps them as
NUMERIC(18, 4), so both also refuse 10^14 and more, where the order and the mapping take
it (a CRM may hold more; one that does not rejects it with its own message).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from wa_bridge.errors import InvalidEvent, MappingOutputInvalid
from wa_bridge.events import CanonicalEvent
from wa_bridge.mapping import CompiledMapping, load_mapping
from wa_bridge.normalize._order import order_of
from wa_bridge.normalize.inbox import normalize_inbox_event
from wa_bridge.worker.facts import inbox_fact_of

MAPPING = """\
version: 1
connector: sql
events:
  inbox.conversation.converted:
    - op: add_note
      fields:
        out: {path: data.value, type: decimal}
"""

STORE_LIMIT = Decimal("100000000000000")  # cases.outcome_value is NUMERIC(18, 4)
AMOUNT_READERS = ("inbox value", "worker outcome value")

# (value, the number every reader takes it as; None: every reader refuses it; the amount
# readers also refuse it from STORE_LIMIT on)
EDGES: list[Any] = [
    ("1249.90", Decimal("1249.90")),
    (" 12 ", Decimal("12")),
    ("1E+3", Decimal("1000")),
    ("-3", Decimal("-3")),
    (".5", Decimal("0.5")),
    (7, Decimal("7")),
    (0.1, Decimal("0.1")),  # the float's shortest text, not 0.1000000000000000055…
    (349.5, Decimal("349.5")),
    ("0." + "1" * 33, Decimal("0." + "1" * 33)),  # 35 characters: the order refused > 30
    ("1" * 15, Decimal("1" * 15)),  # past STORE_LIMIT: an amount reader refuses it
    ("99999999999999.9999", Decimal("99999999999999.9999")),  # the largest amount
    ("-100000000000000", Decimal("-100000000000000")),
    (1e14, Decimal("100000000000000")),
    ("", None),
    ("twelve", None),
    ("1,249.90", None),
    ("NaN", None),
    ("Infinity", None),
    (float("inf"), None),
    (float("nan"), None),
    (True, None),
    ([1], None),
    ({"amount": 1}, None),
    ("1e999999", None),  # only the inbox refused it; the order total crashed on it
    ("1e-50", None),  # "0.000…01" written out: 52 characters
    (1e300, None),  # the worker refused every float; the mapping took this one
    ("1" * 41, None),
    ("1" * 50, None),  # the mapping took text up to 64 characters
    (10**45, None),  # the worker and the mapping took any int
]
IDS = [f"{i}:{str(v)[:16]}" for i, (v, _) in enumerate(EDGES)]

Reader = Callable[[object], Decimal | None]


def _order_total(value: object) -> Decimal | None:
    """An order of one item at ``value``: its total (an int or float in the event)."""
    item = {"product_retailer_id": "SKU-1", "quantity": 1, "item_price": value, "currency": "MXN"}
    total = order_of({"catalog_id": "1", "product_items": [item]})["total"]
    return None if total is None else Decimal(repr(total))


def _inbox(value: object) -> Decimal | None:
    body = {
        "type": "converted",
        "id": "evt-1",
        "time": "2026-06-10T11:00:00-05:00",
        "phone_number_id": "106540352242922",
        "contact": {"phone": "+52 55 1234 5678"},
        "outcome": "won",
        "value": value,
    }
    try:
        event = normalize_inbox_event(body, received_at=datetime(2026, 6, 10, tzinfo=UTC))
    except InvalidEvent as exc:
        assert "value: must be " in str(exc)  # refused for its value, not something else
        return None
    return Decimal(event.data["value"])


def _converted(value: object) -> CanonicalEvent:
    return CanonicalEvent(
        id="inbox:evt-1",
        type="inbox.conversation.converted",
        source="inbox:106540352242922",
        time="2026-06-10T16:00:00Z",
        data={"outcome": "won", "value": value},
    )


def _worker(value: object) -> Decimal | None:
    fact = inbox_fact_of(_converted(value))
    assert fact is not None
    return fact.value


@pytest.fixture(scope="module")
def mapping(tmp_path_factory: pytest.TempPathFactory) -> CompiledMapping:
    path = tmp_path_factory.mktemp("drift") / "m.yaml"
    path.write_text(MAPPING, encoding="utf-8")
    return load_mapping(path)


def _mapped(mapping: CompiledMapping, event: CanonicalEvent) -> Decimal | None:
    try:
        (op,) = mapping.apply(event)
    except MappingOutputInvalid as exc:
        assert "add_note.out: expected " in str(exc)
        return None
    fields = dict(op.fields)
    if "out" not in fields:
        assert value_of(event) == ""  # the engine reads empty text as no value
        return None
    out = fields["out"]
    assert isinstance(out, Decimal)
    return out


def value_of(event: CanonicalEvent) -> object:
    return event.data["value"]


@pytest.mark.parametrize(("value", "expected"), EDGES, ids=IDS)
def test_the_four_readers_agree(mapping: CompiledMapping, value: object, expected: Any) -> None:
    readers: dict[str, Reader] = {
        "order item price": _order_total,
        "inbox value": _inbox,
        "worker outcome value": _worker,
        "mapping decimal field": lambda v: _mapped(mapping, _converted(v)),
    }
    verdicts = {name: read(value) for name, read in readers.items()}
    amount = None if expected is None or abs(expected) >= STORE_LIMIT else expected
    assert {name: verdicts.pop(name) for name in AMOUNT_READERS} == dict.fromkeys(
        AMOUNT_READERS, amount
    )
    if expected is not None:
        # The total is a JSON number: an int or float, compared as one.
        order = verdicts.pop("order item price")
        assert order is not None and float(order) == float(expected)
    assert verdicts == dict.fromkeys(verdicts, expected)


@pytest.mark.parametrize(
    "value",
    [v for v, expected in EDGES if expected is not None and abs(expected) < STORE_LIMIT],
    ids=lambda v: str(v)[:16],
)
def test_what_the_inbox_takes_the_worker_and_the_mapping_take_as_is(
    mapping: CompiledMapping, value: object
) -> None:
    """inbox text → canonical event → worker/facts and the mapping: nothing dropped."""
    event = normalize_inbox_event(
        {
            "type": "converted",
            "id": "evt-1",
            "time": "2026-06-10T11:00:00-05:00",
            "phone_number_id": "106540352242922",
            "contact": {"phone": "+52 55 1234 5678"},
            "value": value,
        },
        received_at=datetime(2026, 6, 10, tzinfo=UTC),
    )
    posted = Decimal(event.data["value"])
    fact = inbox_fact_of(event)
    assert fact is not None and fact.value == posted
    assert _mapped(mapping, event) == posted


def test_a_mapping_file_path_is_kept_in_its_errors(mapping: CompiledMapping) -> None:
    with pytest.raises(MappingOutputInvalid) as caught:
        mapping.apply(_converted("1e999999"))
    assert caught.value.location is not None
    assert caught.value.location.endswith("m.yaml:7")
    assert "add_note.out: expected at most 40 digits long" in str(caught.value)
