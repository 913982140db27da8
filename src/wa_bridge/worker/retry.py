"""Retries: in place (backoff + jitter, Retry-After), then delayed retry topics.

The fate of a failure is decided by its class alone:

- ``CrmRateLimited``: the CRM asked us to wait. Wait its ``retry_after_s`` and try again,
  as often as it asks: a quota never uses up the retry budget, never sends an event to a
  retry topic or the DLQ.
- ``CrmQuotaExhausted``: the CRM's budget is spent for longer: raised at once, and the
  batch processor pauses the worker until it is back (``worker/quota_pause.py``).
- ``RetryableError``: back off in place up to ``retry_in_place_attempts``; then the event
  goes to ``<topic>.retry.<n>`` (due after ``retry_delays_s[n-1]``), and after the last
  retry topic to the DLQ.
- ``PermanentError``: no retry, DLQ now.
- anything else is a bug in our code: it gets the same small in-place budget, then is
  dead-lettered as ``UnexpectedError`` (never a crash loop on a poison event).

Park behind (ordering while an event is in retry): see :class:`ParkingLot`.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Literal, TypeVar, cast, get_args

from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.errors import (
    BusUnavailable,
    CrmQuotaExhausted,
    CrmRateLimited,
    PermanentError,
    RetryableError,
    StoreUnavailable,
)
from wa_bridge.metrics import WORKER_PARKED_CONTACTS

__all__ = [
    "ERROR_CLASSES",
    "UNEXPECTED_ERROR",
    "ErrorClass",
    "Fate",
    "FateAction",
    "ParkingLot",
    "error_class_of",
    "fate_of",
    "is_infrastructure",
    "rate_limit_wait_s",
    "retry_in_place",
    "wait_out_outages",
]

T = TypeVar("T")

# The class names a failure is recorded under (dead letters, logs, the DLQ header): one
# per class of the RetryableError and PermanentError branches of wa_bridge.errors, and
# UnexpectedError for anything else (a bug of ours). A test keeps it equal to the tree.
ErrorClass = Literal[
    "RetryableError",
    "CrmUnavailable",
    "CrmRateLimited",
    "CrmQuotaExhausted",
    "BusUnavailable",
    "StoreUnavailable",
    "PermanentError",
    "InvalidEvent",
    "NotAWebhook",
    "UnkeyedOperation",
    "UnknownRoute",
    "MappingOutputInvalid",
    "CrmRejected",
    "UnexpectedError",
]
ERROR_CLASSES: Final[frozenset[str]] = frozenset(get_args(ErrorClass))
UNEXPECTED_ERROR: Final = "UnexpectedError"
# What happens next to an event whose processing failed.
FateAction = Literal["retry", "dead_letter"]
BACKOFF_BASE_S: Final = 0.05
BACKOFF_MAX_S: Final = 5.0
RATE_LIMIT_FIRST_S: Final = 1.0  # a 429 without Retry-After: wait 1 s, 2 s, … 60 s
RATE_LIMIT_MAX_S: Final = 60.0
OUTAGE_WAIT_FIRST_S: Final = 0.1
OUTAGE_WAIT_MAX_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class Fate:
    """What happens to an event whose processing failed with ``error``."""

    action: FateAction  # "retry": the next retry topic; "dead_letter": the DLQ
    error_class: ErrorClass


def error_class_of(error: BaseException) -> ErrorClass:
    """Our error classes keep their name (a subclass defined elsewhere gets its nearest
    named ancestor's); everything else is an UnexpectedError."""
    if isinstance(error, PermanentError | RetryableError):
        for cls in type(error).__mro__:
            if cls.__name__ in ERROR_CLASSES:
                return cast(ErrorClass, cls.__name__)
    return UNEXPECTED_ERROR


# Our own state or bus is down: wait, retry the whole step, never route events for it.
INFRASTRUCTURE_ERRORS: Final = (StoreUnavailable, BusUnavailable)


def is_infrastructure(error: BaseException) -> bool:
    """Our own state or bus is down: retry the whole batch, never route events for it."""
    return isinstance(error, INFRASTRUCTURE_ERRORS)


def fate_of(error: BaseException, *, attempt: int, max_attempt: int) -> Fate:
    """Decide by class: retryable → next retry topic while one is left, else DLQ."""
    cls = error_class_of(error)
    if isinstance(error, RetryableError) and attempt < max_attempt:
        return Fate("retry", cls)
    return Fate("dead_letter", cls)


def rate_limit_wait_s(error: CrmRateLimited, times: int) -> float:
    """How long to wait after a rate limit: the CRM's ``retry_after_s`` in full (it
    binds), else, for the ``times``-th one in a row without it, a backoff from 1 s
    doubling to 60 s."""
    if error.retry_after_s is not None and error.retry_after_s >= 0:
        return float(error.retry_after_s)
    return min(RATE_LIMIT_MAX_S, RATE_LIMIT_FIRST_S * 2.0 ** min(times - 1, 16))


def _backoff_s(error: BaseException, failures: int, max_wait_s: float) -> float:
    after = getattr(error, "retry_after_s", None)
    if isinstance(after, int | float) and after >= 0:
        return min(max_wait_s, float(after))
    backoff = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2.0 ** min(failures - 1, 16))
    jitter = 0.5 + random.random() / 2  # spreads retries of many workers apart
    return min(max_wait_s, backoff * jitter)


async def retry_in_place(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    on_retry: Callable[[BaseException, int], None] | None = None,
    max_wait_s: float = 30.0,
    clock: Clock = SYSTEM_CLOCK,
) -> T:
    """Run ``call`` until it returns, or until ``attempts`` tries failed with a retryable
    error or a bug; re-raise the last such error then.

    - ``CrmRateLimited`` does not count as a try: wait :func:`rate_limit_wait_s` on
      ``clock`` and call again, for as long as the CRM keeps asking (cancel to give up).
    - other retryable errors and bugs: wait exponential backoff with jitter, or the
      error's ``retry_after_s``, at most ``max_wait_s``.
    - permanent and infrastructure errors, and a spent CRM budget (``CrmQuotaExhausted``:
      the caller pauses, it is no failure), are raised at once.

    ``on_retry(error, n)`` is told each failure before its wait (``n`` counts them all).
    """
    failures = 0  # counted: retryable errors and bugs
    limited = 0  # rate limits without Retry-After in a row: their backoff grows
    tries = 0
    while True:
        tries += 1
        try:
            return await call()
        except (PermanentError, CrmQuotaExhausted, *INFRASTRUCTURE_ERRORS):
            raise
        except CrmRateLimited as exc:
            limited += exc.retry_after_s is None
            wait_s = rate_limit_wait_s(exc, max(1, limited))
            error: BaseException = exc
        except Exception as exc:  # retryable, or a bug: the poison-event rule's small budget
            failures += 1
            if failures >= attempts:
                raise
            limited = 0
            wait_s = _backoff_s(exc, failures, max_wait_s)
            error = exc
        if on_retry is not None:
            on_retry(error, tries)
        await clock.sleep(wait_s)


async def wait_out_outages(
    call: Callable[[], Awaitable[T]],
    *,
    clock: Clock,
    on_wait: Callable[[BaseException], None],
    first_wait_s: float = OUTAGE_WAIT_FIRST_S,
    max_wait_s: float = OUTAGE_WAIT_MAX_S,
) -> T:
    """Run ``call`` until it returns, waiting out ``BusUnavailable``/``StoreUnavailable``.

    Waits double from ``first_wait_s`` up to ``max_wait_s`` on ``clock``; ``on_wait`` is
    told each outage before the wait. Any other exception propagates at once: a bug is
    not an outage (the worker stops, nothing is committed, the supervisor restarts it).
    """
    wait_s = first_wait_s
    while True:
        try:
            return await call()
        except INFRASTRUCTURE_ERRORS as exc:
            on_wait(exc)
            await clock.sleep(wait_s)
            wait_s = min(max_wait_s, wait_s * 2)


@dataclass
class ParkingLot:
    """Which contacts have events in the retry path, per partition (park behind).

    While an event of contact K sits in a retry topic, K's later events must not overtake
    it: the worker routes them to the retry path too, behind it. Retry topics have the
    same partition count as the main topic and records keep their key, so K's records sit
    in partition p of every topic, and the group's range assignment gives all of them to
    one worker. The state lives in that worker's memory: ``{partition: {key: {event_id:
    retry level}}}``. It is rebuilt, after a restart or a rebalance, from the retry
    records the worker fetches again (each fetched retry record parks its key); until
    those are fetched, a later main-topic event could overtake them (documented in the
    README's design notes). Nothing is ever lost or applied twice either way.

    The gauge ``wa_bridge_worker_parked_contacts`` follows the number of parked contacts.
    """

    _parked: dict[int, dict[str, dict[str, int]]] = field(default_factory=dict)

    def park(self, partition: int, key: str, event_id: str, level: int) -> None:
        keys = self._parked.setdefault(partition, {})
        is_new = key not in keys
        keys.setdefault(key, {})[event_id] = level
        if is_new:
            self._export()

    def release(self, partition: int, key: str, event_id: str) -> None:
        keys = self._parked.get(partition)
        if keys is None or key not in keys:
            return
        keys[key].pop(event_id, None)
        if not keys[key]:
            del keys[key]
            self._export()

    def level_ahead(self, partition: int, key: str, event_id: str) -> int:
        """Highest retry level of K's *other* parked events (0: nothing parked ahead)."""
        keys = self._parked.get(partition)
        events = keys.get(key) if keys else None
        if not events:  # the usual answer, asked for every record: no temporary dicts
            return 0
        return max((lvl for eid, lvl in events.items() if eid != event_id), default=0)

    def drop_partition(self, partition: int) -> None:
        if self._parked.pop(partition, None):
            self._export()

    def contacts(self) -> int:
        """How many contacts have an event in the retry path (all partitions)."""
        return sum(len(keys) for keys in self._parked.values())

    def _export(self) -> None:
        WORKER_PARKED_CONTACTS.set(self.contacts())
