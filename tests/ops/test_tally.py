"""The receiver's metric tallies: plain counts settled into Prometheus counters on collection."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter

from wa_bridge.metrics import REGISTRY, WEBHOOK_REQUESTS_TALLY, Tally
from wa_bridge.receiver._outcomes import Outcomes


def _labelled() -> tuple[Counter, Tally]:
    counter = Counter("t_total", "test", ["status"], registry=CollectorRegistry())
    return counter, Tally(counter)


def _value(counter: Counter, status: str) -> float:
    return counter.labels(status)._value.get()


def test_settle_passes_each_count_on_once() -> None:
    counter, tally = _labelled()
    tally.add(("200",))
    tally.add(("200",), 4)
    tally.add(("503",))
    tally.settle()
    assert (_value(counter, "200"), _value(counter, "503")) == (5, 1)
    tally.settle()  # nothing new: nothing added twice
    assert (_value(counter, "200"), _value(counter, "503")) == (5, 1)
    tally.add(("200",), 2)
    tally.settle()
    assert _value(counter, "200") == 7


def test_counts_added_while_settling_elsewhere_are_all_passed_on() -> None:
    counter, tally = _labelled()
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            tally.settle()

    scrapers = [threading.Thread(target=scrape) for _ in range(2)]
    for thread in scrapers:
        thread.start()
    for _ in range(20_000):
        tally.add(("200",))
    stop.set()
    for thread in scrapers:
        thread.join()
    tally.settle()
    assert _value(counter, "200") == 20_000


def test_registry_settles_before_every_read() -> None:
    def requests(status: str) -> float:
        value = REGISTRY.get_sample_value("wa_bridge_webhook_requests_total", {"status": status})
        return value or 0.0

    def published() -> float:
        return REGISTRY.get_sample_value("wa_bridge_events_published_total") or 0.0

    before_200, before_401, before_events = requests("200"), requests("401"), published()
    outcomes = Outcomes()
    outcomes.published(3)
    outcomes.published(2)
    outcomes.record(401, "bad_signature")
    assert WEBHOOK_REQUESTS_TALLY.counts  # counted on the hot path, not yet in the counter
    assert requests("200") == before_200 + 2
    assert requests("401") == before_401 + 1
    assert published() == before_events + 5
    assert requests("200") == before_200 + 2  # a second read adds nothing
