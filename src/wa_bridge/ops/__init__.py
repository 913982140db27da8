"""Operations, on top of everything: the admin API, the console and the ops views.

Only ``cli/`` imports this package (tests/test_layering.py). Its public modules:
"""

__all__ = [
    "admin",  # the admin API routes (dead letters, replay, discard), audited
    "adoptions",  # CRM records a shared number left unused when one was adopted, audited
    "backend",  # the admin API wired to the store and the replayer
    "consents",  # POST /consents: opt-in evidence for the consent ledger, audited
    "console",  # the server-rendered console under /admin (sign-in, CSRF, roles)
    "dead_letters",  # dead-letter views and the replay preview
    "gaps",  # events Kafka received that are not applied, with why
    "identity",  # contacts that look like one person; merge and unmerge them, audited
    "masking",  # personal data masked for viewers
    "openapi",  # the receiver + admin API as documented in openapi.yaml
    "probes",  # the worker's /healthz, /readyz and /metrics server
    "trace",  # one message's (or contact's) steps, end to end
]
