"""The worker: consume canonical events, apply them to the CRM once, route failures.

Its public modules; importing the package imports none of them (the CLI's start-up stays
cheap). Build the worker's parts through :mod:`wa_bridge.worker.assembly`, never by hand.
"""

__all__ = [
    "account",  # account notices (templates, numbers, the account) into account_events
    "alerts",  # built-in alert rules, evaluated by the monitor, posted to a webhook
    "assembly",  # the one place that wires store, mapping, connector, pipeline, replay
    "batch",  # one batch of records: apply together, route each failure by its class
    "commits",  # the offsets each partition may commit
    "consent",  # the consent ledger: which events are consent, what changed
    "conversations",  # cases: when they open and close, FRT, handling time, FCR
    "crm_writes",  # around a connector call: contacts the batch names, events the CRM refused
    "dlq",  # dead-letter records and the DLQ guard
    "facts",  # what the worker reads from a canonical event, in one place
    "loop",  # the consume loop
    "monitor",  # lag, heartbeats, readiness and alerts, sampled periodically
    "options",  # the worker's small option objects, built from Settings
    "outcomes",  # what became of each event: counts, log lines, metrics
    "partition",  # one partition's records between the fetch and the commit
    "pipeline",  # a batch of events → ledger, identity, cases, CRM
    "quota_pause",  # consumption paused while the CRM's budget is spent
    "replay",  # replaying dead letters through the pipeline
    "retention",  # the periodic purge
    "retry",  # fates by error class, in-place retries, park-behind
    "routing",  # park behind, retry topics, the DLQ
    "runner",  # run_worker: the worker's parts in one AsyncExitStack
    "sweep",  # the periodic check for cases whose window lapsed
    "tracing",  # each event's trace and the outcome counters
]
