"""Metric names, defined once (like arroyo's metric_defs), and the Prometheus registry.

Every metric wa-bridge exports is declared here; code imports the objects, never a string.
Labels are closed sets (status codes, event types, outcomes): never a contact or a phone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

__all__ = [
    "ALERTS_FIRING",
    "CONSUMER_LAG",
    "CONTENT_TYPE",
    "CONVERSATIONS_CLOSED",
    "CONVERSATIONS_OPENED",
    "CONVERSATION_CSAT",
    "CONVERSATION_FIRST_RESPONSE_SECONDS",
    "CONVERSATION_HANDLING_SECONDS",
    "CRM_QUOTA_REMAINING",
    "CRM_REQUESTS",
    "CRM_REQUEST_SECONDS",
    "DEAD_LETTERS_OPEN",
    "EVENTS",
    "EVENTS_PUBLISHED",
    "EVENTS_PUBLISHED_TALLY",
    "EVENT_OUTCOMES",
    "MESSAGING_LIMIT",
    "PHONE_NUMBER_QUALITY",
    "QUALITY_LEVELS",
    "REGISTRY",
    "TEMPLATE_QUALITY",
    "WEBHOOK_CHANGES",
    "WEBHOOK_FIELDS",
    "WEBHOOK_REQUESTS",
    "WEBHOOK_REQUESTS_TALLY",
    "WORKER_BATCH_SECONDS",
    "WORKER_PARKED_CONTACTS",
    "WORKER_PAUSED_UNTIL",
    "WORKER_READY",
    "Tally",
    "count_event",
    "count_webhook_changes",
    "observe_crm_failure",
    "observe_crm_request",
    "render",
    "sample_values",
]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


class Tally:
    """A counter's counts kept as plain integers, for the receiver's hot path.

    A ``Counter.inc()`` takes a lock and checks its argument: about 0.8 µs, three times a
    webhook. Here the hot path adds to ``counts`` (labels → running total; one thread
    writes it, the event loop's), and the registry settles the totals into the counter
    before every collection, so ``/metrics`` and ``get_sample_value`` see every count.
    Settling only reads ``counts`` and keeps its own record of what it has passed on, so
    a count added while it runs lands in the next collection, never twice, never lost.
    """

    __slots__ = ("_counter", "_lock", "_settled", "counts")

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._lock = threading.Lock()
        self._settled: dict[tuple[str, ...], int] = {}
        self.counts: dict[tuple[str, ...], int] = {}

    def add(self, labels: tuple[str, ...], amount: int = 1) -> None:
        counts = self.counts
        counts[labels] = counts.get(labels, 0) + amount

    def settle(self) -> None:
        """Pass what was counted since the last settling on to the counter."""
        with self._lock:  # two scrapes at once must not both pass on the same counts
            for labels, total in list(self.counts.items()):  # one C call: atomic
                passed = self._settled.get(labels, 0)
                if total > passed:
                    child = self._counter.labels(*labels) if labels else self._counter
                    child.inc(total - passed)
                    self._settled[labels] = total


class _SettlingRegistry(CollectorRegistry):
    """The registry: settles every :class:`Tally` into its counter before a collection."""

    def __init__(self) -> None:
        super().__init__(auto_describe=True)
        self.tallies: list[Tally] = []

    def collect(self) -> Iterator[Metric]:
        for tally in self.tallies:
            tally.settle()
        yield from super().collect()


REGISTRY: Final = _SettlingRegistry()


def _tally(counter: Counter) -> Tally:
    tally = Tally(counter)
    REGISTRY.tallies.append(tally)
    return tally


def _counter(name: str, documentation: str, *labels: str) -> Counter:
    return Counter(name, documentation, labels, registry=REGISTRY)


def _gauge(name: str, documentation: str, *labels: str) -> Gauge:
    return Gauge(name, documentation, labels, registry=REGISTRY)


def _histogram(
    name: str, documentation: str, buckets: tuple[float, ...], *labels: str
) -> Histogram:
    return Histogram(name, documentation, labels, buckets=buckets, registry=REGISTRY)


# Receiver: one count per webhook POST outcome (status code: 200, 400, 401, 413, 503, ...).
WEBHOOK_REQUESTS: Final = _counter(
    "wa_bridge_webhook_requests_total", "Webhook POSTs by HTTP status answered", "status"
)
# Receiver: canonical events acknowledged by Kafka (webhooks and inbox posts).
EVENTS_PUBLISHED: Final = _counter(
    "wa_bridge_events_published_total", "Canonical events acknowledged by Kafka"
)
# The webhook endpoint counts both through tallies (labels: (status,) and ()).
WEBHOOK_REQUESTS_TALLY: Final = _tally(WEBHOOK_REQUESTS)
EVENTS_PUBLISHED_TALLY: Final = _tally(EVENTS_PUBLISHED)
# Worker: one count per event outcome (applied, noop, stale, duplicate, retried, dead_lettered).
EVENT_OUTCOMES: Final = _counter(
    "wa_bridge_event_outcomes_total", "Events consumed by the worker, by outcome", "outcome"
)
# Worker: time to apply one partition batch (ledger + mapping + CRM + commit).
WORKER_BATCH_SECONDS: Final = _histogram(
    "wa_bridge_worker_batch_seconds",
    "Time to apply one partition batch",
    (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# Worker: contacts whose later events are parked behind an event in retry.
WORKER_PARKED_CONTACTS: Final = _gauge(
    "wa_bridge_worker_parked_contacts", "Contacts with an event in a retry topic"
)

# Connectors: what is left of each CRM instance's quota, as the CRM last reported it
# (window: daily, interval = HubSpot's ten seconds, secondly). crm names the instance
# (connector and host, never a credential).
CRM_QUOTA_REMAINING: Final = _gauge(
    "wa_bridge_crm_quota_remaining",
    "Requests left in the CRM's quota window, as the CRM last reported",
    "crm",
    "window",
)


# --- receiver: webhooks by Meta field ------------------------------------------------------

# Meta's ``entry[].changes[].field`` values we label by name; any other is "other" (a
# closed set keeps the series count bounded whatever Meta sends).
WEBHOOK_FIELDS: Final = frozenset(
    {
        "messages",
        "smb_message_echoes",
        "smb_app_state_sync",
        "history",
        "account_update",
        "account_alerts",
        "message_template_status_update",
        "message_template_quality_update",
        "template_category_update",
        "phone_number_quality_update",
        "phone_number_name_update",
        "user_preferences",
        "business_capability_update",
    }
)
WebhookChangeOutcome = Literal["published", "not_a_webhook", "bus_unavailable"]
WEBHOOK_CHANGES: Final = _counter(
    "wa_bridge_webhook_changes_total",
    "Webhook changes (entry[].changes[]) by Meta field and outcome",
    "field",
    "outcome",
)
_WEBHOOK_CHANGES_TALLY: Final = _tally(WEBHOOK_CHANGES)


def count_webhook_changes(payload: object, outcome: WebhookChangeOutcome) -> None:
    """Count each change of a parsed webhook body under its field (cheap: the hot path)."""
    counts = _WEBHOOK_CHANGES_TALLY.counts
    entries = payload.get("entry") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        key = ("unknown", outcome)
        counts[key] = counts.get(key, 0) + 1
        return
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else ():
            field = change.get("field") if isinstance(change, dict) else None
            key = (
                field if isinstance(field, str) and field in WEBHOOK_FIELDS else "other",
                outcome,
            )
            counts[key] = counts.get(key, 0) + 1


# --- worker: events by type, lag, dead letters ---------------------------------------------

# Worker: events by canonical type and how they ended (applied, noop, stale, replayed,
# retried, dead_lettered); the type is a closed set (wa_bridge.events.EventType).
EVENTS: Final = _counter(
    "wa_bridge_events_total", "Events handled by the worker, by type and outcome", "type", "outcome"
)


def count_event(event_type: str, outcome: str, count: int = 1) -> None:
    EVENTS.labels(type=event_type, outcome=outcome).inc(count)


# Worker: records of each assigned partition not yet consumed (end offset - position).
CONSUMER_LAG: Final = _gauge(
    "wa_bridge_consumer_lag",
    "Records not yet consumed, per partition this worker owns",
    "topic",
    "partition",
)
# Worker (monitor task, read from the state database): dead letters waiting for someone.
DEAD_LETTERS_OPEN: Final = _gauge(
    "wa_bridge_dead_letters_open", "Open dead letters (state database)"
)
# Worker: 1 while it is in its group and its state database answers (GET /readyz).
WORKER_READY: Final = _gauge(
    "wa_bridge_worker_ready", "1 when the worker is consuming and its state database answers"
)
# Worker: while the CRM's budget is spent, when consumption resumes (Unix seconds); 0 when
# it is not paused (worker/quota_pause.py; /readyz answers 503 meanwhile).
WORKER_PAUSED_UNTIL: Final = Gauge(
    "wa_bridge_worker_paused_until_seconds",
    "When a worker paused for a spent CRM budget resumes consuming (Unix time; 0: not paused)",
    registry=REGISTRY,
)
# Worker: built-in alerts this worker sees firing (1) per rule.
ALERTS_FIRING: Final = _gauge(
    "wa_bridge_alerts_firing", "Built-in alert rules firing in this worker's evaluation", "alert"
)

# --- CRM requests (connectors/http.py ``send``) ------------------------------------------------

CRM_REQUESTS: Final = _counter(
    "wa_bridge_crm_requests_total",
    "CRM HTTP requests by connector, endpoint (the action) and status (code, or 'error')",
    "connector",
    "endpoint",
    "status",
)
CRM_REQUEST_SECONDS: Final = _histogram(
    "wa_bridge_crm_request_seconds",
    "CRM HTTP request latency (answered requests)",
    (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    "connector",
    "endpoint",
)


def observe_crm_request(connector: str, endpoint: str, status: int, elapsed_s: float) -> None:
    """One answered CRM request: its status and how long the caller waited for it."""
    CRM_REQUESTS.labels(connector, endpoint, str(status)).inc()
    CRM_REQUEST_SECONDS.labels(connector, endpoint).observe(elapsed_s)


def observe_crm_failure(
    connector: str, endpoint: str, exc: BaseException, elapsed_s: float
) -> None:
    """A CRM request that failed: a non-2xx answer (status, latency) or no answer ('error')."""
    response = getattr(exc, "response", None)  # httpx.HTTPStatusError has one
    if response is not None:
        observe_crm_request(connector, endpoint, response.status_code, elapsed_s)
    else:
        CRM_REQUESTS.labels(connector, endpoint, "error").inc()


# --- conversations (fed by the conversations work, issue "conversations") ---------------------

CONVERSATIONS_OPENED: Final = _counter(
    "wa_bridge_conversations_opened_total", "Conversations (cases) opened"
)
CONVERSATIONS_CLOSED: Final = _counter(
    "wa_bridge_conversations_closed_total",
    "Conversations (cases) closed; first_contact=yes when resolved without a reopen (FCR)",
    "first_contact",
)
CONVERSATION_FIRST_RESPONSE_SECONDS: Final = _histogram(
    "wa_bridge_conversation_first_response_seconds",
    "First response time (FRT): customer's first message to the first agent reply",
    (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400),
)
CONVERSATION_HANDLING_SECONDS: Final = _histogram(
    "wa_bridge_conversation_handling_seconds",
    "Handling time (TMO): conversation opened to resolved",
    (300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800),
)
CONVERSATION_CSAT: Final = _histogram(
    "wa_bridge_conversation_csat", "CSAT scores given (1-5)", (1, 2, 3, 4, 5)
)

# --- account signals (worker monitor task, from the state database) --------------------------

QUALITY_LEVELS: Final[Mapping[str, int]] = {"GREEN": 3, "YELLOW": 2, "RED": 1, "UNKNOWN": 0}
PHONE_NUMBER_QUALITY: Final = _gauge(
    "wa_bridge_phone_number_quality",
    "Business number quality rating: 3 GREEN, 2 YELLOW, 1 RED, 0 unknown",
    "phone_number",
)
MESSAGING_LIMIT: Final = _gauge(
    "wa_bridge_phone_number_messaging_limit",
    "Business-initiated conversations a number may open per day (unlimited: 1e9)",
    "phone_number",
)
TEMPLATE_QUALITY: Final = _gauge(
    "wa_bridge_template_quality",
    "Message template quality: 3 GREEN, 2 YELLOW, 1 RED, 0 unknown",
    "template",
)


def sample_values(names: Iterable[str]) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Current samples of the named series (counters by their ``_total`` name, histograms
    by ``_bucket``/``_sum``/``_count``): name → [(labels, value)]. Reads the registry."""
    wanted = set(names)
    out: dict[str, list[tuple[dict[str, str], float]]] = {name: [] for name in wanted}
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name in wanted:
                out[sample.name].append((dict(sample.labels), float(sample.value)))
    return out


def render() -> bytes:
    """The Prometheus text exposition of every wa-bridge metric."""
    return generate_latest(REGISTRY)
