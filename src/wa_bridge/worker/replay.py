"""Replay dead letters through the normal path (mapping → connector).

A replay applies the stored event with the same :class:`Pipeline` as the worker, but
past the ledger (which says ``dead_lettered``); success marks the dead letter
``replayed`` and the ledger ``replayed``. A dead letter that is not open is skipped, so
replaying twice has the effect of replaying once (and every CRM write is idempotent).
On failure the new error is appended and the dead letter stays open. A rate limit is no
failure: the replay waits the CRM's Retry-After and goes on (a spent daily budget fails
the replay with the time it comes back; the letter stays open).

Callers go through :class:`wa_bridge.worker.assembly.DeadLetterReplayer`, which finds the
dead letters and writes the one audit row per replayed dead letter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.errors import InvalidEvent
from wa_bridge.events import CanonicalEvent
from wa_bridge.log import safe_message
from wa_bridge.store.api import DeadLetter, Store
from wa_bridge.worker.dlq import dead_letter_of
from wa_bridge.worker.pipeline import Pipeline
from wa_bridge.worker.retry import error_class_of, retry_in_place

__all__ = ["ReplayResult", "ReplayStatus", "replay_dead_letters"]

ReplayStatus = Literal["replayed", "failed", "skipped", "would_replay", "not_found"]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay did to one dead letter; ``detail`` says why it failed or was skipped."""

    dead_letter_id: int
    event_id: str
    status: ReplayStatus
    detail: str = ""


async def replay_dead_letters(
    store: Store,
    pipeline: Pipeline | None,
    letters: Sequence[DeadLetter],
    *,
    dry_run: bool = False,
    clock: Clock = SYSTEM_CLOCK,
) -> list[ReplayResult]:
    """Replay ``letters`` one by one, in id order (not audited: the caller audits).

    Without a pipeline (or with ``dry_run``) nothing is applied: the result says which
    dead letters would be replayed.
    """
    results = []
    for letter in sorted(letters, key=lambda d: d.id):
        if letter.status != "open":
            results.append(ReplayResult(letter.id, letter.event_id, "skipped", letter.status))
        elif dry_run or pipeline is None:
            results.append(ReplayResult(letter.id, letter.event_id, "would_replay"))
        else:
            results.append(await _replay_one(store, pipeline, letter, clock))
    return results


async def _replay_one(
    store: Store, pipeline: Pipeline, letter: DeadLetter, clock: Clock
) -> ReplayResult:
    try:
        event = CanonicalEvent.from_json(letter.payload)
    except (ValueError, KeyError, TypeError) as exc:
        # our errors carry no personal data: the parser's text may quote the payload
        error: BaseException = InvalidEvent(f"stored payload is not an event: {safe_message(exc)}")
    else:
        try:
            result = await retry_in_place(
                lambda: pipeline.apply([event], use_ledger=False), attempts=1, clock=clock
            )
        except Exception as exc:  # any failure is this replay's outcome, recorded below
            error = exc
        else:
            refused = result.rejected.get(event.id)
            if refused is None:
                await store.set_dead_letter_status(letter.id, "replayed", note="replayed")
                return ReplayResult(letter.id, letter.event_id, "replayed")
            error = refused  # the CRM refused it again
    again = dead_letter_of(
        error,
        event_id=letter.event_id,
        event_type=letter.event_type,
        contact_key=letter.contact_key,
        payload=letter.payload,
        attempts=1,
        failed_at=clock.now(),
        context="replay",
    )
    async with store.transaction() as tx:
        await tx.add_dead_letters([again])
    # the detail is printed (CLI) and answered (admin API): a log-safe message; the whole
    # one is in the dead letter's new error
    message = safe_message(error) or type(error).__name__
    return ReplayResult(letter.id, letter.event_id, "failed", f"{error_class_of(error)}: {message}")
