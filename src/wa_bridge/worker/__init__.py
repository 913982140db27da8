"""The worker: consume canonical events, apply them to the CRM once, route failures.

Its public modules; importing the package imports none of them (the CLI's start-up stays
cheap). Build the worker's parts through :mod:`wa_bridge.worker.assembly`, never by hand.
"""

__all__ = [
    "alerts",  # built-in alert rules, evaluated by the monitor, posted to a webhook
    "assembly",  # the one place that wires store, mapping, connector, pipeline, replay
    "crm_writes",  # around a connector call: contacts the batch names, events the CRM refused
    "dlq",  # dead-letter records and the DLQ guard
    "facts",  # what the worker reads from a canonical event, in one place
    "loop",  # the consume loop
    "monitor",  # lag, heartbeats, readiness and alerts, sampled periodically
    "partition",  # one partition's records: apply in order, route failures
    "pipeline",  # a batch of events → ledger, identity, cases, CRM
    "replay",  # replaying dead letters through the pipeline
    "retention",  # the periodic purge
    "retry",  # fates by error class, in-place retries, park-behind
    "runner",  # run_worker: the worker's parts in one AsyncExitStack
    "tracing",  # each event's trace and the outcome counters
]
