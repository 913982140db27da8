"""Replay dead letters through the normal path (mapping → connector), audited.

A replay applies the stored event with the same :class:`Pipeline` as the worker, but
past the ledger (which says ``dead_lettered``); success marks the dead letter
``replayed`` and the ledger ``replayed``. A dead letter that is not open is skipped, so
replaying twice has the effect of replaying once (and every CRM write is idempotent).
On failure the new error is appended and the dead letter stays open.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from wa_bridge.errors import InvalidEvent
from wa_bridge.events import CanonicalEvent
from wa_bridge.store.api import DeadLetter, NewDeadLetter, Store
from wa_bridge.worker.pipeline import Pipeline
from wa_bridge.worker.retry import error_class_of

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
    actor: str,
    dry_run: bool = False,
) -> list[ReplayResult]:
    """Replay ``letters`` one by one, in id order; every attempt is audited.

    Without a pipeline (or with ``dry_run``) nothing is applied: the result says which
    dead letters would be replayed.
    """
    results = []
    for letter in sorted(letters, key=lambda d: d.id):
        if letter.status != "open":
            results.append(ReplayResult(letter.id, letter.event_id, "skipped", letter.status))
            continue
        if dry_run or pipeline is None:
            results.append(ReplayResult(letter.id, letter.event_id, "would_replay"))
            continue
        result = await _replay_one(store, pipeline, letter)
        await store.record_audit(
            actor=actor,
            role="operator",
            action="dlq.replay",
            target=str(letter.id),
            detail=f"{result.status}: {result.detail}"[:300],
        )
        results.append(result)
    return results


async def _replay_one(store: Store, pipeline: Pipeline, letter: DeadLetter) -> ReplayResult:
    try:
        event = CanonicalEvent.from_json(letter.payload)
    except (ValueError, KeyError, TypeError) as exc:
        error: BaseException = InvalidEvent(f"stored payload is not an event: {exc}")
    else:
        try:
            await pipeline.apply([event], use_ledger=False)
        except Exception as exc:
            error = exc
        else:
            await store.set_dead_letter_status(letter.id, "replayed", note="replayed")
            return ReplayResult(letter.id, letter.event_id, "replayed")
    message = str(error) or type(error).__name__
    async with store.transaction() as tx:
        await tx.add_dead_letters(
            [
                NewDeadLetter(
                    event_id=letter.event_id,
                    event_type=letter.event_type,
                    contact_key=letter.contact_key,
                    payload=letter.payload,
                    error_class=error_class_of(error),
                    error_message=f"replay: {message}"[:500],
                    crm_error=getattr(error, "crm_error", None),
                    attempts=1,
                    failed_at=datetime.now(UTC),
                )
            ]
        )
    return ReplayResult(letter.id, letter.event_id, "failed", f"{error_class_of(error)}: {message}")
