"""The worker's monitor task: figures every ``monitor_interval_s``, and the built-in alerts.

Each tick: the lag of every partition this worker owns (``wa_bridge_consumer_lag``), the
open dead letters and the account signals from the database (gauges every worker
exports alike), readiness, this worker's heartbeat row with its own figures (the
console's live figures), then the alert rules over the sampled metrics. Runs in the
worker's TaskGroup beside the consumer loop; a database or broker outage is logged and
the next tick tries again (readiness drops to 0 meanwhile).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from typing import Any, Final

from wa_bridge.bus.consumer import TopicPartition
from wa_bridge.clock import SYSTEM_CLOCK, Clock, sleep_unless_stopped
from wa_bridge.errors import BusUnavailable, StoreUnavailable
from wa_bridge.log import get_logger
from wa_bridge.metrics import (
    CONSUMER_LAG,
    DEAD_LETTERS_OPEN,
    MESSAGING_LIMIT,
    PHONE_NUMBER_QUALITY,
    QUALITY_LEVELS,
    TEMPLATE_QUALITY,
    WORKER_READY,
    sample_values,
)
from wa_bridge.settings import Settings
from wa_bridge.store.ops import OpsStore
from wa_bridge.worker.alerts import Alerter, Evaluator, Notifier, WebhookNotifier, load_rules
from wa_bridge.worker.loop import Worker

__all__ = ["Monitor", "run_monitor", "worker_identity"]

log = get_logger("worker.monitor")

QUOTA_METRIC: Final = "wa_bridge_crm_quota_remaining"  # defined by the quota work
_FIGURE_METRICS: Final = (
    "wa_bridge_crm_requests_total",
    "wa_bridge_crm_request_seconds_sum",
    "wa_bridge_crm_request_seconds_count",
    "wa_bridge_events_total",
    QUOTA_METRIC,
)


def worker_identity() -> str:
    """``host:pid``: names this worker in heartbeats and alert ownership."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(eq=False, repr=False)
class Monitor:
    """One worker's figures and alerts; :meth:`tick` does one round (see the module)."""

    worker: Worker
    ops: OpsStore
    _: KW_ONLY
    evaluator: Evaluator
    alerter: Alerter
    interval_s: float
    worker_id: str
    clock: Clock = SYSTEM_CLOCK
    started_at: datetime = field(init=False)
    _lag_series: set[tuple[str, str]] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.started_at = self.clock.now()

    async def tick(self) -> None:
        """May raise StoreUnavailable or BusUnavailable (nothing half done matters)."""
        lag = await self._lag()
        open_letters = await self.ops.count_open_dead_letters()
        DEAD_LETTERS_OPEN.set(open_letters)
        await self._signals()
        WORKER_READY.set(1)
        await self.ops.record_heartbeat(
            worker_id=self.worker_id,
            started_at=self.started_at,
            figures=self._figures(lag, open_letters),
            forget_after_s=max(300.0, self.interval_s * 20),
        )
        self.evaluator.observe(self.clock.monotonic(), sample_values)
        await self.alerter.handle(self.evaluator.evaluate())

    async def _lag(self) -> dict[str, int]:
        consumer = self.worker.consumer
        assigned = sorted(consumer.assignment())
        ends = await consumer.end_offsets(assigned) if assigned else {}
        lag: dict[str, int] = {}
        seen: set[tuple[str, str]] = set()
        for tp in assigned:
            behind = max(0, ends.get(tp, 0) - await consumer.position(tp))
            labels = (tp.topic, str(tp.partition))
            CONSUMER_LAG.labels(*labels).set(behind)
            seen.add(labels)
            lag[_name(tp)] = behind
        for gone in self._lag_series - seen:  # revoked partitions: another worker reports
            CONSUMER_LAG.remove(*gone)
        self._lag_series = seen
        return lag

    async def _signals(self) -> None:
        for signal in await self.ops.latest_signals():
            level = QUALITY_LEVELS.get(signal.quality or "UNKNOWN", 0)
            if signal.scope == "template":
                TEMPLATE_QUALITY.labels(template=signal.label or signal.subject).set(level)
                continue
            if signal.quality is not None:
                PHONE_NUMBER_QUALITY.labels(phone_number=signal.subject).set(level)
            if signal.messaging_limit is not None:
                MESSAGING_LIMIT.labels(phone_number=signal.subject).set(signal.messaging_limit)

    def _figures(self, lag: Mapping[str, int], open_letters: int) -> dict[str, Any]:
        samples = sample_values(_FIGURE_METRICS)
        crm: dict[str, dict[str, float]] = {}
        for labels, value in samples["wa_bridge_crm_requests_total"]:
            per = crm.setdefault(labels.get("connector", ""), {})
            per["requests"] = per.get("requests", 0.0) + value
            if not labels.get("status", "").startswith("2"):
                per["failed"] = per.get("failed", 0.0) + value
        for suffix in ("sum", "count"):
            for labels, value in samples[f"wa_bridge_crm_request_seconds_{suffix}"]:
                per = crm.setdefault(labels.get("connector", ""), {})
                per[f"seconds_{suffix}"] = per.get(f"seconds_{suffix}", 0.0) + value
        quota = {
            ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "all": value
            for labels, value in samples[QUOTA_METRIC]
        }
        events: dict[str, float] = {}
        for labels, value in samples["wa_bridge_events_total"]:
            outcome = labels.get("outcome", "")
            events[outcome] = events.get(outcome, 0.0) + value
        return {
            "lag": dict(lag),
            "dead_letters_open": open_letters,
            "crm": crm,
            "quota": quota,
            "events": events,
        }


def _name(tp: TopicPartition) -> str:
    return f"{tp.topic}/{tp.partition}"


async def run_monitor(
    worker: Worker, settings: Settings, stop: asyncio.Event, *, clock: Clock = SYSTEM_CLOCK
) -> None:
    """Tick every ``settings.monitor_interval_s`` until ``stop`` (interval 0: never)."""
    interval_s = settings.monitor_interval_s
    if interval_s <= 0:  # no monitor: ready once in the group (the loop runs)
        WORKER_READY.set(1)
        return
    worker_id = worker_identity()
    ops = worker.processor.pipeline.store.ops
    notifier: Notifier | None = None
    if settings.alert_webhook_url is not None:
        notifier = WebhookNotifier(settings.alert_webhook_url.get_secret_value())
    monitor = Monitor(
        worker,
        ops,
        evaluator=Evaluator(load_rules(settings.alert_rules_path).rules),
        alerter=Alerter(
            ops, notifier, owner=worker_id, stale_after_s=max(60.0, interval_s * 4), clock=clock
        ),
        interval_s=interval_s,
        worker_id=worker_id,
        clock=clock,
    )
    try:
        while not stop.is_set():
            try:
                async with asyncio.timeout(max(interval_s, 5.0)):
                    await monitor.tick()
            except (StoreUnavailable, BusUnavailable, TimeoutError) as exc:
                WORKER_READY.set(0)
                log.warning("monitor_tick_failed", error_class=type(exc).__name__)
            await sleep_unless_stopped(clock, interval_s, stop)
    finally:
        WORKER_READY.set(0)
        if notifier is not None:
            await notifier.aclose()
