"""Dead-letter actions shared by the admin API, the console and the CLI.

- :func:`discard`: close dead letters without replaying them, audited.
- :func:`preview`: what the mapping on disk now makes of a dead letter's event (the CRM
  write a replay would send), beside the failure that dead-lettered it.
- :class:`BulkReplay`: replay what a selection holds (``--all`` / ``--filter``), in id
  order, one at a time through the one replay path (audited there), recording its
  progress so an interrupted run resumes where it stopped; the loop guard leaves out
  dead letters already replayed ``max_failures`` times without success.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from wa_bridge.errors import WaBridgeError
from wa_bridge.events import CanonicalEvent
from wa_bridge.store.api import DeadLetter, DeadLetterFilter, Store
from wa_bridge.store.replay_runs import ReplayRun

__all__ = [
    "BulkReplay",
    "Preview",
    "ReplayOne",
    "RunProgress",
    "discard",
    "filter_of",
    "preview",
    "selection_of",
]


async def discard(
    store: Store, ids: Sequence[int], *, actor: str, role: str, reason: str = ""
) -> dict[int, str]:
    """Mark each open dead letter ``discarded``; one audit row each. Returns id → result
    (``discarded``, ``skipped: <status>`` or ``not_found``)."""
    out: dict[int, str] = {}
    for dead_letter_id in ids:
        letter = await store.get_dead_letter(dead_letter_id)
        if letter is None:
            out[dead_letter_id] = "not_found"
            continue
        if letter.status != "open":
            out[dead_letter_id] = f"skipped: {letter.status}"
            continue
        note = f"discarded by {actor}" + (f": {reason}" if reason else "")
        await store.set_dead_letter_status(dead_letter_id, "discarded", note=note[:500])
        await store.record_audit(
            actor=actor,
            role=role,
            action="dlq.discard",
            target=f"dead_letter:{dead_letter_id}",
            detail=(reason or "discarded")[:300],
        )
        out[dead_letter_id] = "discarded"
    return out


@dataclass(frozen=True, slots=True)
class Preview:
    """The operations the current mapping makes of the event (as plain JSON data), or why
    it cannot (the error a replay would meet before the CRM)."""

    operations: list[dict[str, Any]]
    error: str | None = None


class _Mapper(Protocol):
    def apply(self, event: CanonicalEvent) -> Sequence[Any]: ...


def preview(letter: DeadLetter, mapper: _Mapper) -> Preview:
    """Map the dead letter's event with ``mapper`` (no I/O, nothing written)."""
    try:
        event = CanonicalEvent.from_json(letter.payload)
        ops = mapper.apply(event)
    except (WaBridgeError, ValueError, KeyError, TypeError) as exc:
        return Preview([], f"{type(exc).__name__}: {exc}")
    out = []
    for op in ops:
        data = {
            "kind": op.kind,
            "contact_key": op.contact_key,
            "case_key": op.case_key,
            "fields": dict(op.fields),
            "write_modes": dict(op.write_modes),
            "source": op.source,
        }
        out.append(orjson.loads(orjson.dumps(data, default=str)))
    return Preview(out)


# --- bulk replay ------------------------------------------------------------------------


def selection_of(flt: DeadLetterFilter) -> dict[str, Any]:
    """A filter as stored with a run (times as ISO strings)."""
    return {
        "error_class": flt.error_class,
        "event_type": flt.event_type,
        "contact_key": flt.contact_key,
        "since": flt.since.isoformat() if flt.since else None,
        "until": flt.until.isoformat() if flt.until else None,
    }


def filter_of(selection: Mapping[str, Any], *, limit: int) -> DeadLetterFilter:
    def when(name: str) -> datetime | None:
        value = selection.get(name)
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    return DeadLetterFilter(
        status="open",
        error_class=selection.get("error_class"),
        event_type=selection.get("event_type"),
        contact_key=selection.get("contact_key"),
        since=when("since"),
        until=when("until"),
        limit=limit,
    )


# Replays one dead letter through the one replay path (audited there): its result word
# (replayed, failed, skipped, not_found) and detail.
ReplayOne = Callable[[int], Awaitable[tuple[str, str]]]


@dataclass(frozen=True, slots=True)
class RunProgress:
    """Told after each dead letter: where the run is and what it did to that one."""

    run: ReplayRun
    done: int
    total: int
    dead_letter_id: int
    result: str
    detail: str


class BulkReplay:
    """One resumable replay run over a selection of open dead letters."""

    def __init__(self, store: Store, replay_one: ReplayOne, *, max_failures: int) -> None:
        self.store = store
        self.replay_one = replay_one
        self.max_failures = max_failures

    async def start(self, flt: DeadLetterFilter, *, actor: str) -> ReplayRun:
        return await self.store.ops.start_replay_run(actor=actor, selection=selection_of(flt))

    async def pending(self, run: ReplayRun, *, batch: int = 10_000) -> list[DeadLetter]:
        """Open dead letters of the run's selection after its cursor, in id order."""
        letters = await self.store.list_dead_letters(filter_of(run.selection, limit=batch))
        return sorted((d for d in letters if d.id > run.cursor), key=lambda d: d.id)

    async def run(
        self, run: ReplayRun, on_progress: Callable[[RunProgress], None] | None = None
    ) -> ReplayRun:
        """Replay what is pending; the cursor moves after each dead letter, so a run
        interrupted anywhere resumes with the next one. Returns the finished run."""
        todo = await self.pending(run)
        failures = await self.store.ops.failed_replays([d.id for d in todo])
        current = run
        for done, letter in enumerate(todo, start=1):
            if failures.get(letter.id, 0) >= self.max_failures:
                result = "held"
                detail = (
                    f"replayed {failures[letter.id]} times without success: left out of bulk "
                    "replays (replay it by id once the cause is fixed)"
                )
            else:
                result, detail = await self.replay_one(letter.id)
            counts = {"replayed": 0, "failed": 0, "held": 0}
            if result in counts:
                counts[result] = 1
            await self.store.ops.advance_replay_run(current.id, cursor=letter.id, **counts)
            current = dataclasses.replace(
                current,
                cursor=letter.id,
                replayed=current.replayed + counts["replayed"],
                failed=current.failed + counts["failed"],
                held=current.held + counts["held"],
            )
            if on_progress is not None:
                on_progress(RunProgress(current, done, len(todo), letter.id, result, detail))
        await self.store.ops.finish_replay_run(current.id)
        return dataclasses.replace(current, status="done")
