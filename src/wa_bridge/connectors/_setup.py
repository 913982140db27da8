"""What ``wa-bridge crm setup`` shares across CRMs: the report, and requests that back off.

Each vendor's ``setup.py`` decides what its CRM needs (HubSpot properties, Salesforce
custom fields and their field-level security); here is the shape of the answer (one
:class:`Outcome` per item, notes for what an admin must do, a summary) and
:func:`send_patiently`, which sends one setup request and, when the CRM says "rate
limited", waits (``Retry-After``, else a growing backoff) and sends it again. The client's
gate records the wait too, so workers running meanwhile hold back as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NotRequired, TypedDict, Unpack, get_args

import httpx

from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.connectors.base import SetupResult
from wa_bridge.connectors.http import ErrorDialect, send
from wa_bridge.errors import CrmRateLimited

__all__ = [
    "RATE_LIMIT_ATTEMPTS",
    "Outcome",
    "SetupReport",
    "SetupRequest",
    "Status",
    "send_patiently",
]

# Setup's statuses: found usable, created now, granted now (it existed, hidden from the
# API user), missing (a dry run: would be created or granted), needs a human.
Status = Literal["created", "exists", "granted", "missing", "problem"]
RATE_LIMIT_ATTEMPTS: Final = 6
_BACKOFF_FIRST_S: Final = 1.0
_BACKOFF_MAX_S: Final = 30.0
_ALWAYS_COUNTED: Final = ("created", "problem")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What setup found or did for one item (``object_type.name``)."""

    object_type: str
    name: str
    status: Status
    detail: str = ""

    def line(self) -> str:
        text = f"{self.object_type}.{self.name}: {self.status}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True, slots=True)
class SetupReport:
    """Every item's outcome, and notes (what else was done, or what an admin must do)."""

    outcomes: tuple[Outcome, ...]
    notes: tuple[str, ...] = ()

    def by_status(self, status: Status) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        return not self.by_status("problem")

    def result(self) -> SetupResult:
        """One line per item, the notes, then the count of each status found (created
        and problem always)."""
        counts = {s: len(self.by_status(s)) for s in get_args(Status)}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n or s in _ALWAYS_COUNTED)
        lines = (*(o.line() for o in self.outcomes), *self.notes, summary)
        return SetupResult(lines, ok=self.ok)


class SetupRequest(TypedDict):
    """What :func:`send_patiently` passes on to :func:`~wa_bridge.connectors.http.send`."""

    dialect: ErrorDialect
    action: str
    json: NotRequired[Any]
    params: NotRequired[Mapping[str, str] | None]


async def send_patiently(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    clock: Clock = SYSTEM_CLOCK,
    attempts: int = RATE_LIMIT_ATTEMPTS,
    **request: Unpack[SetupRequest],
) -> httpx.Response:
    """:func:`~wa_bridge.connectors.http.send`, sent again after a rate limit (up to
    ``attempts`` times in all, waiting ``Retry-After`` or 1, 2, 4… s, at most 30 s).
    Other errors, and the last rate limit, are raised."""
    backoff_s = _BACKOFF_FIRST_S
    for attempt in range(1, attempts + 1):
        try:
            return await send(client, method, url, **request)
        except CrmRateLimited as exc:
            if attempt == attempts:
                raise
            wait_s = exc.retry_after_s if exc.retry_after_s is not None else backoff_s
            backoff_s = min(_BACKOFF_MAX_S, backoff_s * 2)
            await clock.sleep(min(_BACKOFF_MAX_S, wait_s))
    raise AssertionError("unreachable")  # the loop returns or raises
