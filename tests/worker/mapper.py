"""A small hand-written mapper for worker tests: a real EventMapper, not a mock.

Notes carry the message id and a per-contact sequence number so tests can check the
CRM's write order. ``data.poison`` makes the mapping fail on purpose.
"""

from __future__ import annotations

from wa_bridge.errors import MappingOutputInvalid
from wa_bridge.events import CanonicalEvent
from wa_bridge.operations import CrmOperation


class NoteMapper:
    def apply(self, event: CanonicalEvent) -> list[CrmOperation]:
        poison = event.data.get("poison")
        if poison == "permanent":
            raise MappingOutputInvalid("field seq is not an integer", location="test.yaml:3")
        if poison == "bug":
            raise RuntimeError("a bug in our code")
        if event.type == "whatsapp.message.status":
            return [
                CrmOperation(
                    kind="record_outcome",
                    fields={"status": str(event.data["status"])},
                    event_id=event.id,
                )
            ]
        if event.type != "whatsapp.message.received":
            return []
        return [
            CrmOperation(kind="upsert_contact", fields={"channel": "whatsapp"}, event_id=event.id),
            CrmOperation(
                kind="add_note",
                fields={"message_id": str(event.data["message_id"]), "seq": event.data["seq"]},
                event_id=event.id,
                index=1,
            ),
        ]
