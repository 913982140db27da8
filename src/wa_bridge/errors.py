"""The exception tree of wa-bridge.

::

    WaBridgeError
    ├── ConfigError               bad settings or mapping file: fail at startup, CLI exit 2
    │   └── MappingErrors         every problem of a mapping file, each at file:line:column
    ├── DlqLimitExceeded          most recent events were dead-lettered: the worker stops (exit 3)
    ├── MergeRefused              an identity merge or unmerge that cannot be done as asked
    ├── RetryableError            has retry_after_s: float | None
    │   ├── CrmUnavailable        timeout, connect error, 5xx
    │   ├── CrmRateLimited        429 (+ Retry-After)
    │   ├── CrmQuotaExhausted     CRM budget spent (daily limit, long wait): pause until resume_at
    │   ├── BusUnavailable        Kafka unreachable or not acknowledging in time
    │   └── StoreUnavailable      database connection lost
    └── PermanentError            never retried → dead letter, with the reason
        ├── InvalidEvent          cannot parse, normalize or map
        │   ├── NotAWebhook       a body that is not a WABA webhook (the receiver's 400)
        │   └── UnkeyedOperation  an operation has no contact or case key to write by
        ├── UnknownRoute          an event for a phone_number_id this deployment does not serve
        ├── MappingOutputInvalid  fails a type, catalog or required-field check
        └── CrmRejected           4xx validation or auth (status_code, crm_error)

``MappingErrors`` lives beside the mapping loader (``wa_bridge.mapping``), whose issue
type it carries. The worker decides an event's fate by error class alone. Errors carry
ids, never personal data, and their message says what to do next.
"""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "BusUnavailable",
    "ConfigError",
    "CrmQuotaExhausted",
    "CrmRateLimited",
    "CrmRejected",
    "CrmUnavailable",
    "DlqLimitExceeded",
    "InvalidEvent",
    "MappingOutputInvalid",
    "MergeRefused",
    "NotAWebhook",
    "PermanentError",
    "RetryableError",
    "StoreUnavailable",
    "UnkeyedOperation",
    "UnknownRoute",
    "WaBridgeError",
]


class WaBridgeError(Exception):
    """Base class of every error wa-bridge raises on purpose."""


class ConfigError(WaBridgeError, ValueError):
    """A setting or a mapping file is wrong; raised at start-up (CLI exit code 2)."""


class DlqLimitExceeded(WaBridgeError):
    """Most recent events were dead-lettered: stop consuming instead of filling the DLQ.

    Raised by the worker's DLQ guard (a bad deploy, a CRM that rejects everything); the
    worker stops with a CRITICAL log and ``wa-bridge worker`` exits with code 3.
    """


class MergeRefused(WaBridgeError, ValueError):
    """``wa-bridge identity merge`` / ``unmerge`` cannot do what was asked (an unknown or
    already merged contact, an unmerge that would reuse a case key); nothing was changed."""


class RetryableError(WaBridgeError):
    """A failure that may pass if the same work is tried again later."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CrmUnavailable(RetryableError):
    """The CRM timed out, refused the connection or answered 5xx."""


class CrmRateLimited(RetryableError):
    """The CRM answered 429 (or its own rate-limit equivalent); honour retry_after_s."""


class CrmQuotaExhausted(RetryableError):
    """The CRM's budget is spent until ``resume_at`` (an aware UTC datetime): its daily
    request allocation (HubSpot ``DAILY``, Salesforce ``REQUEST_LIMIT_EXCEEDED``), or a
    ``Retry-After`` longer than a worker should wait inside a request.

    Raised by the CRM's gate (``wa_bridge.connectors.gate``) *before* a request is sent
    (nothing was written), or instead of the CRM's refusal. It is shared: every worker
    process sees the same pause through the state database.

    Contract for the worker: stop fetching (pause consumption; Kafka holds the backlog),
    wait until ``resume_at``, then retry the same batch. A quota is not a failure of the
    events: it never counts against the retry budget, never routes an event to a retry
    topic and never dead-letters one. ``retry_after_s`` holds the seconds from when it
    was raised until ``resume_at``, for code that only knows RetryableError.
    """

    def __init__(self, message: str, *, resume_at: datetime, retry_after_s: float) -> None:
        super().__init__(message, retry_after_s=max(0.0, retry_after_s))
        self.resume_at = resume_at


class BusUnavailable(RetryableError):
    """Kafka is unreachable or did not acknowledge within the deadline."""


class StoreUnavailable(RetryableError):
    """The state database is unreachable or lost its connection."""


class PermanentError(WaBridgeError):
    """A failure that will not pass by retrying; the event is dead-lettered with the reason."""


class InvalidEvent(PermanentError):
    """The event cannot be parsed, normalized or mapped."""


class UnkeyedOperation(InvalidEvent):
    """A CRM operation has no contact (or case) key to write its record by."""


class NotAWebhook(InvalidEvent):
    """The body is not a WhatsApp Business Account webhook; the message says why (400 body)."""


class UnknownRoute(PermanentError):
    """The event is for a phone_number_id this deployment does not serve."""


class MappingOutputInvalid(PermanentError):
    """Mapped output fails a type, catalog, length or required-field check.

    ``location`` is ``file:line`` of the mapping rule that produced the value.
    """

    def __init__(self, message: str, *, location: str | None = None, field: str | None = None):
        super().__init__(message)
        self.location = location
        self.field = field


class CrmRejected(PermanentError):
    """The CRM refused the request (4xx validation or auth); ``crm_error`` is its message."""

    def __init__(self, message: str, *, status_code: int, crm_error: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.crm_error = crm_error
