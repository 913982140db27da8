"""What the worker holds of one assigned partition: fetched records waiting for a batch,
how many are in the batch in flight, and the offset to commit.

A partition is in at most one batch at a time and gives it a prefix of its waiting
records, so its records are applied in offset order and the batch's end is the next
offset to commit: everything before it is finished (applied, a duplicate or stale, sent
to a retry topic, or dead-lettered). A retry-topic partition's records wait until due.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from wa_bridge.bus.consumer import Delivery, TopicPartition

__all__ = ["PartitionState"]


@dataclass(eq=False, slots=True)
class PartitionState:
    """One partition's records between the fetch and the commit. Not thread-safe: the
    worker's tasks share it on one event loop."""

    tp: TopicPartition
    is_retry: bool  # a retry topic: records are ready once due, not at once
    waiting: deque[tuple[float, Delivery]] = field(default_factory=deque)  # (arrived, record)
    in_batch: int = 0  # records in the batch in flight (0: none)
    commit_at: int | None = None  # the next offset to commit (everything before finished)
    committed: int | None = None  # what the broker last acknowledged for this partition
    paused: bool = False  # fetching paused: at the cap, or retry records waiting
    revoking: bool = False  # the group takes it away: no new batch, finish and commit
    assignment: int = 0  # bumped when the group assigns it again (see restart)

    @property
    def busy(self) -> bool:
        return self.in_batch > 0

    @property
    def unfinished(self) -> int:
        """Fetched and not finished: waiting plus in the batch in flight."""
        return len(self.waiting) + self.in_batch

    def add(self, deliveries: list[Delivery], now_s: float) -> None:
        self.waiting.extend((now_s, d) for d in deliveries)

    def ready(self, now_ms: int) -> int:
        """How many waiting records a batch may take now (the leading due ones of a retry
        topic, which are in due order as they were published)."""
        if not self.is_retry:
            return len(self.waiting)
        n = 0
        for _, d in self.waiting:
            if d.due_ms > now_ms:
                break
            n += 1
        return n

    def first_arrival(self) -> float | None:
        """When the oldest waiting record arrived (monotonic seconds), if any."""
        return self.waiting[0][0] if self.waiting else None

    def next_due_ms(self) -> int | None:
        """When the first waiting retry record is due (epoch ms), if any."""
        if not self.is_retry or not self.waiting:
            return None
        return self.waiting[0][1].due_ms

    def take(self, n: int) -> list[Delivery]:
        """The first ``n`` waiting records, for the batch now in flight."""
        taken = [self.waiting.popleft()[1] for _ in range(min(n, len(self.waiting)))]
        self.in_batch = len(taken)
        return taken

    def finish(self, last_offset: int, assignment: int) -> None:
        """The batch in flight, taken under ``assignment``, finished every record it took,
        up to ``last_offset``; its end is committed only if the partition was not assigned
        anew meanwhile (the consumer's position then came from the group's offsets)."""
        self.in_batch = 0
        if assignment == self.assignment:
            self.commit_at = last_offset + 1

    def restart(self) -> None:
        """The group assigned the partition anew: the consumer reads again from the
        committed offset, so forget what was fetched and what this member committed.
        A batch in flight still finishes (and holds the partition until then)."""
        self.waiting.clear()
        self.commit_at = None
        self.committed = None
        self.paused = False
        self.assignment += 1

    def to_commit(self) -> int | None:
        """The offset to commit now, if it moved since the last commit."""
        if self.commit_at is None or self.commit_at == self.committed:
            return None
        return self.commit_at
