"""A scripted RecordProducer: a real alternative to Kafka's, per the seam (no mock)."""

from __future__ import annotations

from dataclasses import dataclass, field

from wa_bridge.bus.record_producer import Headers


@dataclass
class ScriptedProducer:
    """Fails the next sends with ``failures`` (in order), then acknowledges."""

    failures: list[BaseException] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    async def send_and_wait(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None,
        partition: int | None,
        headers: Headers,
    ) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(topic)
