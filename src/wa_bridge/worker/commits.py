"""Committing finished offsets: one commit call for every partition that moved.

A task commits after each batch (coalescing what finished meanwhile); a rebalance and the
end of a run commit at once. Commits never overlap, and a commit the group refuses (it
moved on, the broker is gone) is logged, not raised: the next reader reads those records
again and the ledger skips what took effect.

After a refused commit, committing stops until the group assigns partitions again (at most
``SUSPEND_S``): a refusal usually means this member was dropped (a broker restart, a missed
heartbeat), and aiokafka then commits as a member-less client, which a broker with an empty
group accepts. Offsets from before the drop may not name the same records any more (a
broker that lost its log: ``wa-bridge dev``), so they are not committed; the next
assignment starts again from the group's own offsets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from wa_bridge.bus.consumer import RecordConsumer, TopicPartition
from wa_bridge.clock import Clock
from wa_bridge.errors import BusUnavailable
from wa_bridge.log import get_logger
from wa_bridge.worker.partition import PartitionState

__all__ = ["OffsetCommitter", "cause_name"]

log = get_logger("worker")

SUSPEND_S: Final = 60.0  # a refused commit stops commits until reassigned, at most this


class OffsetCommitter:
    """Commits the ``commit_at`` of partition states through ``consumer``;
    ``on_committed`` is told of each commit call the broker acknowledged."""

    def __init__(
        self, consumer: RecordConsumer, on_committed: Callable[[], None], clock: Clock
    ) -> None:
        self.consumer = consumer
        self.on_committed = on_committed
        self.clock = clock
        self._due = asyncio.Event()
        self._lock = asyncio.Lock()
        self._suspended_until: float | None = None

    def resume(self) -> None:
        """The group assigned partitions again: commits are valid again."""
        self._suspended_until = None

    def mark_due(self) -> None:
        """Finished offsets moved: the running :meth:`run` commits them soon."""
        self._due.set()

    async def run(self, states: Mapping[TopicPartition, PartitionState]) -> None:
        """Commit whenever marked due, until cancelled; ``states`` is read at each commit."""
        while True:
            await self._due.wait()
            self._due.clear()
            await self.commit(list(states.values()))

    async def commit(self, states: Iterable[PartitionState]) -> None:
        """Commit the next offset of every state in ``states`` that moved, in one call."""
        async with self._lock:
            if self._is_suspended():
                return
            moved = [
                (state, offset) for state in states if (offset := state.to_commit()) is not None
            ]
            if not moved:
                return
            try:
                await self.consumer.commit({state.tp: offset for state, offset in moved})
            except BusUnavailable as exc:
                log.warning("offset_commit_failed", error=cause_name(exc), suspended_s=SUSPEND_S)
                self._suspended_until = self.clock.monotonic() + SUSPEND_S
                return
            for state, offset in moved:
                state.committed = offset
            self.on_committed()

    def _is_suspended(self) -> bool:
        until = self._suspended_until
        if until is not None and self.clock.monotonic() >= until:
            self._suspended_until = None
        return self._suspended_until is not None


def cause_name(exc: BusUnavailable) -> str:
    """The Kafka error's class behind ``exc`` (what the log names)."""
    cause = exc.__cause__
    return type(cause).__name__ if cause is not None else type(exc).__name__
