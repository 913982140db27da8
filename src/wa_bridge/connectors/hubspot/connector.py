"""The HubSpot connector: batch upserts by wa-bridge's own unique properties.

- contacts: ``POST …/contacts/batch/upsert`` with ``idProperty`` = ``wa_contact_key``;
  consent is stored as contact properties (HubSpot's consent API is e-mail only).
- cases: tickets upserted by ``wa_case_key``; outcomes are ticket properties (contact
  properties when the operation names no case).
- notes: WhatsApp communications (``hs_communication_channel_type=WHATS_APP``) upserted
  by ``wa_note_key`` (the wamid, else the operation's idempotency key), so a status update
  changes the same record and keeps its body.
- associations: ticket → contact, note → contact and note → ticket, by the v4 batch
  "associate default" endpoint, after the records are written.

Create-only defaults (a ticket's ``subject`` and ``hs_pipeline``, a status-only note's
``hs_timestamp``) are sent only for records that do not exist yet (the shared
:class:`~wa_bridge.connectors._records.RecordConnector` looks unknown keys up first, one
batch read per upsert batch), so an update never overwrites what an agent set in HubSpot.

Property values are sent as strings (HubSpot's spec types them so). The unique properties
must exist in the portal with ``hasUniqueValue: true``; every other ``wa_*`` property
must exist too. Paths: ``/crm/v3/objects/`` or, with ``api_style="2026-03"``,
``/crm/objects/2026-03/``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import httpx

from wa_bridge.connectors import _records as shared
from wa_bridge.connectors.http import send
from wa_bridge.connectors.hubspot.dialect import HUBSPOT_ERRORS
from wa_bridge.connectors.hubspot.properties import (
    CASE_KEY_REF,
    CONTACT_KEY_REF,
    HubSpotOptions,
    consent_properties,
    contact_property,
    note_property,
    outcome_property,
    property_value,
    ticket_property,
)
from wa_bridge.operations import CrmOperation, FieldValue

__all__ = ["HubSpotConnector"]

Group = Literal["contacts", "tickets", "notes"]
_Write = shared.Write[Group, str]


def _values(fields: Mapping[str, FieldValue], name: Callable[[str], str] = str) -> dict[str, str]:
    """``fields`` as property strings, under the property ``name`` gives each field."""
    return {name(k): property_value(v) for k, v in fields.items()}


class HubSpotConnector(shared.RecordConnector[Group, str]):
    """HubSpot's translation of the shared record shape (see the module docstring)."""

    name = "hubspot"
    max_batch = 100
    groups = ("contacts", "tickets", "notes")
    errors = HUBSPOT_ERRORS

    def __init__(self, client: httpx.AsyncClient, options: HubSpotOptions | None = None) -> None:
        super().__init__(client)
        self.options = o = options or HubSpotOptions()
        if o.api_style == "v3":
            self._objects, self._assoc = "/crm/v3/objects", "/crm/v4/associations"
        else:
            self._objects = f"/crm/objects/{o.api_style}"
            self._assoc = f"/crm/associations/{o.api_style}"
        self._id_properties: Mapping[Group, str] = {
            "contacts": o.contact_id_property,
            "tickets": o.case_id_property,
            "notes": o.note_id_property,
        }

    def _object_type(self, group: Group) -> str:
        return self.options.note_object if group == "notes" else group

    # --- translation ------------------------------------------------------------------
    def _translate(self, op: CrmOperation) -> _Write:
        contact_key = shared.require_key(op, "contact_key")
        if op.kind == "upsert_contact":
            return shared.Write("contacts", contact_key, _values(op.fields, contact_property))
        if op.kind == "set_consent":
            return shared.Write("contacts", contact_key, _values(consent_properties(op.fields)))
        if op.kind == "upsert_case":
            case_key = shared.require_key(op, "case_key")
            props, defaults = self._ticket_properties(op)
            return shared.Write("tickets", case_key, props, defaults, contact_key=contact_key)
        if op.kind == "record_outcome":
            props = _values(op.fields, outcome_property)
            if op.case_key:
                return shared.Write("tickets", op.case_key, props, contact_key=contact_key)
            return shared.Write("contacts", contact_key, props)
        props, defaults = self._note_properties(op)
        return shared.Write(
            "notes",
            shared.note_key(op),
            props,
            defaults,
            contact_key=contact_key,
            case_key=op.case_key,
        )

    def _ticket_properties(self, op: CrmOperation) -> tuple[dict[str, str], dict[str, str]]:
        """The ticket's properties, and the create-only defaults (subject, pipeline)."""
        o = self.options
        defaults = {"subject": o.default_subject, "hs_pipeline": o.ticket_pipeline}
        props: dict[str, str] = {}
        for name, value in op.fields.items():
            if name == "status":
                props["hs_pipeline_stage"] = shared.case_status(
                    op, o.ticket_stages, "HubSpot stage"
                )
                props["hs_pipeline"] = o.ticket_pipeline  # the stage belongs to this pipeline
                props[ticket_property(name)] = property_value(value)
            elif value or name != "subject":  # an empty subject leaves the default
                props[ticket_property(name)] = property_value(value)
        props[CONTACT_KEY_REF] = property_value(op.contact_key)
        return props, defaults

    def _note_properties(self, op: CrmOperation) -> tuple[dict[str, str], dict[str, str]]:
        """The note's properties, and the create-only defaults (a status's time as
        ``hs_timestamp``, which HubSpot requires to create a note)."""
        status_only = shared.is_status_only(op.fields)
        props: dict[str, str] = {}
        defaults: dict[str, str] = {}
        if self.options.note_object == "communications":
            props["hs_communication_channel_type"] = "WHATS_APP"
            props["hs_communication_logged_from"] = "CRM"
        for name, value in op.fields.items():
            prop = note_property(name, is_status_only=status_only, options=self.options)
            props[prop] = property_value(value)
            if name == "occurred_at" and status_only:
                defaults["hs_timestamp"] = props[prop]  # HubSpot needs it to create a note
        props[CONTACT_KEY_REF] = property_value(op.contact_key)
        if op.case_key:
            props[CASE_KEY_REF] = op.case_key
        return props, defaults

    # --- requests ---------------------------------------------------------------------
    async def _upsert(
        self, group: Group, chunk: Sequence[shared.Record[str]], values: Sequence[Mapping[str, str]]
    ) -> shared.Upserted[str]:
        object_type, id_property = self._object_type(group), self._id_properties[group]
        inputs = [
            {"id": r.key, "idProperty": id_property, "properties": properties}
            for r, properties in zip(chunk, values, strict=True)
        ]
        data = await self._post(
            f"{self._objects}/{object_type}/batch/upsert", f"upsert {object_type}", inputs
        )
        answer = shared.Upserted(refused=_refused(data, chunk))
        results = data.get("results") or []
        for position, result in enumerate(results):
            key = (result.get("properties") or {}).get(id_property)
            if key is None and len(results) == len(chunk):
                key = chunk[position].key  # HubSpot did not echo the property: same order
            answer.ids[str(key)] = (str(result["id"]), bool(result.get("new", False)))
        return answer

    async def _lookup(self, group: Group, keys: Sequence[str]) -> None:
        """Find HubSpot ids by our unique property (batch read)."""
        object_type, id_property = self._object_type(group), self._id_properties[group]
        for start in range(0, len(keys), self.max_batch):
            inputs = [{"id": k} for k in keys[start : start + self.max_batch]]
            data = await self._post(
                f"{self._objects}/{object_type}/batch/read",
                f"read {object_type}",
                inputs,
                idProperty=id_property,
                properties=[id_property],
            )
            for result in data.get("results") or []:
                key = (result.get("properties") or {}).get(id_property)
                if key is not None:
                    self._ids.remember(group, str(key), str(result["id"]))

    # --- associations -----------------------------------------------------------------
    async def _after(self, plan: shared.RecordPlan[Group, str]) -> None:
        """Associate tickets and notes with their contacts, and notes with their tickets."""
        tickets, notes = plan.records("tickets"), plan.records("notes")
        await self._resolve("contacts", (r.contact_key for r in [*tickets, *notes]))
        await self._resolve("tickets", (r.case_key for r in notes))
        pairs: dict[tuple[Group, Group], list[tuple[str, str]]] = {}
        for ticket in tickets:
            self._pair(pairs, ("tickets", ticket.key), ("contacts", ticket.contact_key))
        for note in notes:
            self._pair(pairs, ("notes", note.key), ("contacts", note.contact_key))
            self._pair(pairs, ("notes", note.key), ("tickets", note.case_key))
        for (source, target), links in pairs.items():
            path = f"{self._object_type(source)}/{self._object_type(target)}"
            for start in range(0, len(links), self.max_batch):
                inputs = [
                    {"from": {"id": a}, "to": {"id": b}}
                    for a, b in links[start : start + self.max_batch]
                ]
                await self._post(
                    f"{self._assoc}/{path}/batch/associate/default",
                    f"associate {path.replace('/', ' to ')}",
                    inputs,
                )

    async def _post(
        self, url: str, action: str, inputs: list[dict[str, Any]], **extra: Any
    ) -> dict[str, Any]:
        """POST a batch body (``inputs`` plus ``extra`` members); its JSON answer."""
        response = await send(
            self._client,
            "POST",
            url,
            dialect=HUBSPOT_ERRORS,
            action=action,
            json={**extra, "inputs": inputs},
        )
        data = response.json()
        return data if isinstance(data, dict) else {}

    def _pair(
        self,
        pairs: dict[tuple[Group, Group], list[tuple[str, str]]],
        source: tuple[Group, str],
        target: tuple[Group, str | None],
    ) -> None:
        if target[1] is None:
            return
        source_id = self._ids.get(*source)
        target_id = self._ids.get(target[0], target[1])
        if source_id is not None and target_id is not None:
            pairs.setdefault((source[0], target[0]), []).append((source_id, target_id))


def _refused(
    data: Mapping[str, Any], chunk: Sequence[shared.Record[str]]
) -> list[tuple[shared.Record[str], Any]]:
    """The records HubSpot refused in a 207 answer, each with its error."""
    by_key = {r.key: r for r in chunk}
    refused: list[tuple[shared.Record[str], Any]] = []
    for error in data.get("errors") or []:
        if isinstance(error, dict):
            ids = (error.get("context") or {}).get("ids") or [error.get("id")]
            records = [by_key[str(i)] for i in ids if str(i) in by_key] or [chunk[0]]
            refused.extend((record, error) for record in records)
    return refused
