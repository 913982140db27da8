"""Metric names, defined once (like arroyo's metric_defs), and the Prometheus registry.

Every metric wa-bridge exports is declared here; code imports the objects, never a string.
Labels are closed sets (status codes, event types, outcomes): never a contact or a phone.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = [
    "CONTENT_TYPE",
    "CRM_QUOTA_REMAINING",
    "EVENTS_PUBLISHED",
    "EVENT_OUTCOMES",
    "REGISTRY",
    "WEBHOOK_REQUESTS",
    "WORKER_BATCH_SECONDS",
    "WORKER_PARKED_CONTACTS",
    "render",
]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

REGISTRY: Final = CollectorRegistry(auto_describe=True)

# Receiver: one count per webhook POST outcome (status code: 200, 400, 401, 413, 503, ...).
WEBHOOK_REQUESTS: Final = Counter(
    "wa_bridge_webhook_requests_total",
    "Webhook POSTs by HTTP status answered",
    ["status"],
    registry=REGISTRY,
)
# Receiver: canonical events acknowledged by Kafka (webhooks and inbox posts).
EVENTS_PUBLISHED: Final = Counter(
    "wa_bridge_events_published_total",
    "Canonical events acknowledged by Kafka",
    registry=REGISTRY,
)
# Worker: one count per event outcome (applied, noop, stale, duplicate, retried, dead_lettered).
EVENT_OUTCOMES: Final = Counter(
    "wa_bridge_event_outcomes_total",
    "Events consumed by the worker, by outcome",
    ["outcome"],
    registry=REGISTRY,
)
# Worker: time to apply one partition batch (ledger + mapping + CRM + commit).
WORKER_BATCH_SECONDS: Final = Histogram(
    "wa_bridge_worker_batch_seconds",
    "Time to apply one partition batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
# Worker: contacts whose later events are parked behind an event in retry.
WORKER_PARKED_CONTACTS: Final = Gauge(
    "wa_bridge_worker_parked_contacts",
    "Contacts with an event in a retry topic",
    registry=REGISTRY,
)

# Connectors: what is left of each CRM instance's quota, as the CRM last reported it
# (window: daily, interval = HubSpot's ten seconds, secondly). crm names the instance
# (connector and host, never a credential).
CRM_QUOTA_REMAINING: Final = Gauge(
    "wa_bridge_crm_quota_remaining",
    "Requests left in the CRM's quota window, as the CRM last reported",
    ["crm", "window"],
    registry=REGISTRY,
)


def render() -> bytes:
    """The Prometheus text exposition of every wa-bridge metric."""
    return generate_latest(REGISTRY)
