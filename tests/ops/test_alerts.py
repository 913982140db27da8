"""Built-in alerts: rule kinds on sampled figures, one notification per incident shared by
two workers, a resolve message, a Slack-compatible body without personal data, posted to
a real local HTTP receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from wa_bridge.clock import ManualClock
from wa_bridge.errors import ConfigError
from wa_bridge.store import open_store
from wa_bridge.worker.alerts import Alerter, AlertRule, Evaluator, WebhookNotifier, load_rules

Series = dict[str, list[tuple[dict[str, str], float]]]


class Receiver:
    """A local Slack-like incoming webhook: records every JSON body posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                owner.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(owner.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


class Figures:
    """A sampler whose values the test sets (same shape as metrics.sample_values)."""

    def __init__(self) -> None:
        self.series: Series = {}

    def set(self, name: str, value: float, **labels: str) -> None:
        rows = [(lab, v) for lab, v in self.series.get(name, []) if lab != labels]
        self.series[name] = [*rows, (labels, value)]

    def __call__(self, names: Iterable[str]) -> Series:
        return {n: list(self.series.get(n, [])) for n in names}


def _rule(**values: Any) -> AlertRule:
    base: dict[str, Any] = {"name": "R", "summary": "{value:g}", "metric": "wa_bridge_x"}
    return AlertRule.model_validate({**base, **values})


def test_shipped_rules_load_and_a_bad_file_names_the_problem(tmp_path: Path) -> None:
    names = [r.name for r in load_rules().rules]
    for wanted in (
        "DeadLettersGrowing",
        "ConsumerLagHigh",
        "FirstResponseOverSla",
        "VolumeSpike",
        "CrmErrorRate",
        "CrmQuotaNearlySpent",
        "NumberQualityDropped",
        "TemplateQualityDropped",
        "MessagingLimitLowered",
    ):
        assert wanted in names
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - name: X\n    kind: nope\n    metric: wa_bridge_x\n")
    with pytest.raises(ConfigError, match=r"rules.yaml.*kind"):
        load_rules(bad)


def test_rule_kinds_on_sampled_figures() -> None:
    figures = Figures()
    rules = [
        _rule(
            name="Lag",
            kind="value",
            metric="wa_bridge_lag",
            by=["partition"],
            threshold=10,
            for_s=30,
        ),
        _rule(name="Grew", kind="increase", metric="wa_bridge_open", window_s=60, threshold=0),
        _rule(
            name="Errors",
            kind="ratio",
            metric="wa_bridge_req_total",
            match={"status": "5..|error"},
            window_s=60,
            threshold=0.2,
        ),
        _rule(
            name="Slow",
            kind="quantile",
            metric="wa_bridge_frt",
            quantile=0.9,
            window_s=60,
            threshold=100,
        ),
        _rule(name="Lowered", kind="drop", metric="wa_bridge_limit", window_s=3600, threshold=0),
    ]
    ev = Evaluator(rules)
    figures.set("wa_bridge_lag", 50, partition="0")
    figures.set("wa_bridge_lag", 1, partition="1")
    figures.set("wa_bridge_open", 2)
    figures.set("wa_bridge_req_total", 10, status="200")
    figures.set("wa_bridge_limit", 10000)
    for le, count in (("50", 0), ("100", 0), ("200", 0), ("+Inf", 0)):
        figures.set("wa_bridge_frt_bucket", count, le=le)
    ev.observe(0, figures)
    assert not any(f.firing for f in ev.evaluate())  # lag over 10, not yet for 30 s
    figures.set("wa_bridge_open", 5)
    figures.set("wa_bridge_req_total", 16, status="200")
    figures.set("wa_bridge_req_total", 4, status="503")
    figures.set("wa_bridge_limit", 1000)
    for le, count in (("50", 1), ("100", 2), ("200", 10), ("+Inf", 10)):
        figures.set("wa_bridge_frt_bucket", count, le=le)
    ev.observe(40, figures)
    found = {(f.rule.name, tuple(sorted(f.labels.items()))): f for f in ev.evaluate()}
    lag = found[("Lag", (("partition", "0"),))]
    assert lag.value == 50 and lag.firing  # over 10 since t=0: 40 s ≥ for_s
    assert not found[("Lag", (("partition", "1"),))].firing
    assert found[("Grew", ())].value == 3 and found[("Grew", ())].firing
    assert found[("Errors", ())].value == pytest.approx(4 / 10) and found[("Errors", ())].firing
    assert 100 < found[("Slow", ())].value <= 200 and found[("Slow", ())].firing
    assert found[("Lowered", ())].value == 9000 and found[("Lowered", ())].firing


def test_for_s_holds_a_rule_back_until_it_lasted() -> None:
    figures = Figures()
    ev = Evaluator([_rule(kind="value", threshold=1, for_s=30)])
    figures.set("wa_bridge_x", 5)
    ev.observe(0, figures)
    assert not ev.evaluate()[0].firing
    ev.observe(31, figures)
    assert ev.evaluate()[0].firing
    figures.set("wa_bridge_x", 0)
    ev.observe(40, figures)
    assert not ev.evaluate()[0].firing


async def test_one_post_per_incident_across_two_workers_and_a_resolve(
    tmp_path: Path, receiver: Receiver
) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", create=True)
    clock = ManualClock()
    figures = Figures()
    rule = _rule(
        name="NumberQualityDropped",
        summary="business number {phone_number} quality is {quality}",
        kind="value",
        metric="wa_bridge_phone_number_quality",
        by=["phone_number"],
        aggregate="min",
        op="<",
        threshold=3,
        floor=1,
        severity="critical",
    )
    notifiers = [WebhookNotifier(receiver.url), WebhookNotifier(receiver.url)]
    workers = [
        (
            Evaluator([rule]),
            Alerter(store.ops, notifiers[i], owner=f"w{i}", stale_after_s=60, clock=clock),
        )
        for i in range(2)
    ]

    async def tick() -> None:
        for evaluator, alerter in workers:
            evaluator.observe(clock.monotonic(), figures)
            await alerter.handle(evaluator.evaluate())

    try:
        figures.set("wa_bridge_phone_number_quality", 3, phone_number="541150000002")
        await tick()
        assert receiver.bodies == []
        figures.set("wa_bridge_phone_number_quality", 1, phone_number="541150000002")
        await tick()
        await tick()  # still firing: no second message
        assert len(receiver.bodies) == 1
        text = receiver.bodies[0]["text"]
        assert "[FIRING]" in text and "NumberQualityDropped" in text and "RED" in text
        figures.set("wa_bridge_phone_number_quality", 3, phone_number="541150000002")
        await tick()
        await tick()
        assert len(receiver.bodies) == 2
        assert "[RESOLVED]" in receiver.bodies[1]["text"]
        incidents = await store.ops.list_incidents()
        assert [(i.rule, i.state, i.notified) for i in incidents] == [
            ("NumberQualityDropped", "resolved", "resolved")
        ]
    finally:
        for notifier in notifiers:
            await notifier.aclose()
        await store.aclose()


async def test_a_failed_post_is_tried_again_and_no_personal_data_is_sent(
    tmp_path: Path, receiver: Receiver
) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", create=True)
    figures = Figures()
    notifier = WebhookNotifier(receiver.url)
    ev = Evaluator([r for r in load_rules().rules if r.name == "ConsumerLagHigh"])
    alerter = Alerter(store.ops, notifier, owner="w", stale_after_s=60)
    try:
        figures.set("wa_bridge_consumer_lag", 20000, topic="wa.events", partition="3")
        receiver.status = 500
        ev.observe(0, figures)
        await alerter.handle(ev.evaluate())  # over the threshold, not yet for 5 minutes
        assert receiver.bodies == []
        ev.observe(301, figures)
        await alerter.handle(ev.evaluate())
        assert len(receiver.bodies) == 1  # refused by the receiver
        receiver.status = 200
        ev.observe(302, figures)
        await alerter.handle(ev.evaluate())
        assert len(receiver.bodies) == 2  # posted again, then marked
        ev.observe(303, figures)
        await alerter.handle(ev.evaluate())
        assert len(receiver.bodies) == 2
        body = receiver.bodies[-1]
        assert set(body) == {"text", "username"}
        assert "partition 3 of wa.events is 20000 records behind" in body["text"]
    finally:
        await notifier.aclose()
        await store.aclose()
