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
``hs_timestamp``) are sent only for records that do not exist yet: keys missing from the
id cache are looked up first (one batch read per upsert batch), so an update never
overwrites what an agent set in HubSpot.

Property values are sent as strings (HubSpot's spec types them so). The unique properties
must exist in the portal with ``hasUniqueValue: true``; every other ``wa_*`` property
must exist too. Paths: ``/crm/v3/objects/`` or, with ``api_style="2026-03"``,
``/crm/objects/2026-03/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from wa_bridge.connectors.base import CrmResult
from wa_bridge.connectors.http import item_error, send
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
from wa_bridge.errors import CrmUnavailable, MappingOutputInvalid
from wa_bridge.operations import CrmOperation, FieldValue

__all__ = ["HubSpotConnector"]

_CACHE_MAX: Final = 50_000


@dataclass
class _Write:
    """One HubSpot record to upsert, merged from every operation that touches it."""

    key: str
    properties: dict[str, str]
    op_indexes: list[int]
    # Sent only when the record is created (HubSpot requires them then); never on update.
    create_defaults: dict[str, str] = field(default_factory=dict)
    contact_key: str | None = None
    case_key: str | None = None


@dataclass
class _Plan:
    contacts: dict[str, _Write] = field(default_factory=dict)
    tickets: dict[str, _Write] = field(default_factory=dict)
    notes: dict[str, _Write] = field(default_factory=dict)
    # op index → (object type, key)
    targets: dict[int, tuple[str, str]] = field(default_factory=dict)

    def add(
        self,
        index: int,
        group: str,
        key: str,
        properties: Mapping[str, str],
        defaults: Mapping[str, str] | None = None,
        **refs: Any,
    ) -> None:
        writes: dict[str, _Write] = getattr(self, group)
        write = writes.get(key)
        if write is None:
            write = writes[key] = _Write(key, {}, [], **refs)
        write.properties.update(properties)
        write.create_defaults.update(defaults or {})
        write.op_indexes.append(index)
        for name, value in refs.items():
            if value is not None:
                setattr(write, name, value)
        self.targets[index] = (group, key)


class HubSpotConnector:
    """A :class:`~wa_bridge.connectors.base.CrmConnector` for HubSpot.

    Owns ``client`` (closed by :meth:`aclose`). Raises only :mod:`wa_bridge.errors`.
    """

    name = "hubspot"
    max_batch = 100

    def __init__(self, client: httpx.AsyncClient, options: HubSpotOptions | None = None) -> None:
        self._client = client
        self.options = options or HubSpotOptions()
        if self.options.api_style == "v3":
            self._objects, self._assoc = "/crm/v3/objects", "/crm/v4/associations"
        else:
            self._objects = f"/crm/objects/{self.options.api_style}"
            self._assoc = f"/crm/associations/{self.options.api_style}"
        self._ids: dict[tuple[str, str], str] = {}  # (object type, our key) → HubSpot id

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- apply ------------------------------------------------------------------------
    async def apply(self, ops: Sequence[CrmOperation]) -> Sequence[CrmResult]:
        """Write ``ops``: contacts, then tickets, then notes (merged per record, in order),
        then their associations. Raises on the first failed record with HubSpot's message.
        """
        plan = _Plan()
        for index, op in enumerate(ops):
            self._plan(plan, index, op)
        o = self.options
        written: dict[str, dict[str, tuple[str, bool]]] = {
            "contacts": await self._upsert("contacts", o.contact_id_property, plan.contacts, ops),
            "tickets": await self._upsert("tickets", o.case_id_property, plan.tickets, ops),
            "notes": await self._upsert(o.note_object, o.note_id_property, plan.notes, ops),
        }
        await self._associate(plan)
        results = []
        for index in range(len(ops)):
            group, key = plan.targets[index]
            crm_id, created = written[group][key]
            results.append(CrmResult(crm_id=crm_id, created=created))
        return results

    def _plan(self, plan: _Plan, index: int, op: CrmOperation) -> None:
        contact_key = _required(op.contact_key, "contact_key", op)
        if op.kind == "upsert_contact":
            props = {contact_property(k): property_value(v) for k, v in op.fields.items()}
            plan.add(index, "contacts", contact_key, props)
        elif op.kind == "set_consent":
            consent = consent_properties(op.fields)
            plan.add(index, "contacts", contact_key, _values(consent))
        elif op.kind == "upsert_case":
            case_key = _required(op.case_key, "case_key", op)
            props, defaults = self._ticket_properties(op)
            plan.add(index, "tickets", case_key, props, defaults, contact_key=contact_key)
        elif op.kind == "record_outcome":
            props = {outcome_property(k): property_value(v) for k, v in op.fields.items()}
            if op.case_key:
                plan.add(index, "tickets", op.case_key, props, contact_key=contact_key)
            else:
                plan.add(index, "contacts", contact_key, props)
        else:
            key = str(op.fields.get("message_id") or op.idempotency_key)
            props, defaults = self._note_properties(op)
            plan.add(
                index, "notes", key, props, defaults, contact_key=contact_key, case_key=op.case_key
            )

    def _ticket_properties(self, op: CrmOperation) -> tuple[dict[str, str], dict[str, str]]:
        """The ticket's properties, and the create-only defaults (subject, pipeline)."""
        o = self.options
        defaults = {"subject": o.default_subject, "hs_pipeline": o.ticket_pipeline}
        props: dict[str, str] = {}
        for name, value in op.fields.items():
            if name == "status":
                stage = o.ticket_stages.get(str(value))
                if stage is None:
                    raise MappingOutputInvalid(
                        f"upsert_case of event {op.event_id}: no HubSpot stage for status",
                        location=op.source,
                        field="status",
                    )
                props["hs_pipeline_stage"] = stage
                props["hs_pipeline"] = o.ticket_pipeline  # the stage belongs to this pipeline
                props[ticket_property(name)] = property_value(value)
            elif value or name != "subject":  # an empty subject leaves the default
                props[ticket_property(name)] = property_value(value)
        props[CONTACT_KEY_REF] = property_value(op.contact_key)
        return props, defaults

    def _note_properties(self, op: CrmOperation) -> tuple[dict[str, str], dict[str, str]]:
        """The note's properties, and the create-only defaults (a status's time as
        ``hs_timestamp``, which HubSpot requires to create a note)."""
        fields = op.fields
        is_status_only = "status" in fields and "body" not in fields and "direction" not in fields
        props: dict[str, str] = {}
        defaults: dict[str, str] = {}
        if self.options.note_object == "communications":
            props["hs_communication_channel_type"] = "WHATS_APP"
            props["hs_communication_logged_from"] = "CRM"
        for name, value in fields.items():
            prop = note_property(name, is_status_only=is_status_only, options=self.options)
            props[prop] = property_value(value)
            if name == "occurred_at" and is_status_only:
                defaults["hs_timestamp"] = props[prop]  # HubSpot needs it to create a note
        props[CONTACT_KEY_REF] = property_value(op.contact_key)
        if op.case_key:
            props[CASE_KEY_REF] = op.case_key
        return props, defaults

    async def _upsert(
        self,
        object_type: str,
        id_property: str,
        writes: Mapping[str, _Write],
        ops: Sequence[CrmOperation],
    ) -> dict[str, tuple[str, bool]]:
        out: dict[str, tuple[str, bool]] = {}
        items = list(writes.values())
        for start in range(0, len(items), self.max_batch):
            chunk = items[start : start + self.max_batch]
            inputs = [
                {"id": w.key, "idProperty": id_property, "properties": properties}
                for w, properties in zip(
                    chunk, await self._with_defaults(object_type, id_property, chunk), strict=True
                )
            ]
            url = f"{self._objects}/{object_type}/batch/upsert"
            response = await send(
                self._client,
                "POST",
                url,
                dialect=HUBSPOT_ERRORS,
                action=f"upsert {object_type}",
                json={"inputs": inputs},
            )
            data = response.json()
            _raise_item_errors(data, chunk, ops, object_type)
            for position, result in enumerate(data.get("results") or []):
                key = (result.get("properties") or {}).get(id_property)
                if key is None and len(data["results"]) == len(chunk):
                    key = chunk[position].key  # HubSpot did not echo the property: same order
                out[str(key)] = (str(result["id"]), bool(result.get("new", False)))
        missing = [k for k in writes if k not in out]
        if missing:
            raise CrmUnavailable(
                f"hubspot: upsert {object_type} answered no result for {len(missing)} records"
            )
        for key, (crm_id, _) in out.items():
            self._remember(object_type, key, crm_id)
        return out

    async def _with_defaults(
        self, object_type: str, id_property: str, chunk: Sequence[_Write]
    ) -> list[dict[str, str]]:
        """Each write's properties, plus its create-only defaults if the record is new.

        Keys not in the id cache are read first (one batch read for the chunk), so a
        default never overwrites a value set in HubSpot.
        """
        needed = {
            w.key for w in chunk if any(name not in w.properties for name in w.create_defaults)
        }
        await self._resolve(object_type, id_property, set(needed))
        out = []
        for w in chunk:
            if w.key in needed and (object_type, w.key) not in self._ids:
                out.append({**w.create_defaults, **w.properties})
            else:
                out.append(w.properties)
        return out

    # --- associations -----------------------------------------------------------------
    async def _associate(self, plan: _Plan) -> None:
        o = self.options
        contact_keys = {w.contact_key for w in [*plan.tickets.values(), *plan.notes.values()]}
        case_keys = {w.case_key for w in plan.notes.values()}
        await self._resolve("contacts", o.contact_id_property, contact_keys)
        await self._resolve("tickets", o.case_id_property, case_keys)
        pairs: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for ticket in plan.tickets.values():
            self._pair(pairs, ("tickets", ticket.key), ("contacts", ticket.contact_key))
        for note in plan.notes.values():
            self._pair(pairs, (o.note_object, note.key), ("contacts", note.contact_key))
            self._pair(pairs, (o.note_object, note.key), ("tickets", note.case_key))
        for (source, target), links in pairs.items():
            for start in range(0, len(links), self.max_batch):
                inputs = [
                    {"from": {"id": a}, "to": {"id": b}}
                    for a, b in links[start : start + self.max_batch]
                ]
                await send(
                    self._client,
                    "POST",
                    f"{self._assoc}/{source}/{target}/batch/associate/default",
                    dialect=HUBSPOT_ERRORS,
                    action=f"associate {source} to {target}",
                    json={"inputs": inputs},
                )

    def _pair(
        self,
        pairs: dict[tuple[str, str], list[tuple[str, str]]],
        source: tuple[str, str],
        target: tuple[str, str | None],
    ) -> None:
        target_key = target[1]
        if target_key is None:
            return
        source_id = self._ids.get(source)
        target_id = self._ids.get((target[0], target_key))
        if source_id is not None and target_id is not None:
            pairs.setdefault((source[0], target[0]), []).append((source_id, target_id))

    async def _resolve(self, object_type: str, id_property: str, keys: set[str | None]) -> None:
        """Find HubSpot ids of records this process has not written yet (batch read)."""
        unknown = sorted(k for k in keys if k is not None and (object_type, k) not in self._ids)
        for start in range(0, len(unknown), self.max_batch):
            body = {
                "idProperty": id_property,
                "properties": [id_property],
                "inputs": [{"id": k} for k in unknown[start : start + self.max_batch]],
            }
            response = await send(
                self._client,
                "POST",
                f"{self._objects}/{object_type}/batch/read",
                dialect=HUBSPOT_ERRORS,
                action=f"read {object_type}",
                json=body,
            )
            for result in response.json().get("results") or []:
                key = (result.get("properties") or {}).get(id_property)
                if key is not None:
                    self._remember(object_type, str(key), str(result["id"]))

    def _remember(self, object_type: str, key: str, crm_id: str) -> None:
        if len(self._ids) >= _CACHE_MAX:
            self._ids.clear()  # a cache: HubSpot stays the source of truth
        self._ids[(object_type, key)] = crm_id


def _required(value: str | None, what: str, op: CrmOperation) -> str:
    if not value:
        raise MappingOutputInvalid(
            f"{op.kind} of event {op.event_id} has no {what}; the worker must resolve it",
            location=op.source,
        )
    return value


def _values(properties: Mapping[str, FieldValue]) -> dict[str, str]:
    return {name: property_value(value) for name, value in properties.items()}


def _raise_item_errors(
    data: Mapping[str, Any], chunk: Sequence[_Write], ops: Sequence[CrmOperation], object_type: str
) -> None:
    """Raise for the earliest operation whose record HubSpot refused (207)."""
    errors = [e for e in data.get("errors") or [] if isinstance(e, dict)]
    if not errors:
        return
    by_key = {w.key: w for w in chunk}
    failed: list[tuple[int, dict[str, Any]]] = []
    for error in errors:
        ids = (error.get("context") or {}).get("ids") or [error.get("id")]
        writes = [by_key[str(i)] for i in ids if str(i) in by_key] or [chunk[0]]
        failed.extend((min(w.op_indexes), error) for w in writes)
    index, error = min(failed, key=lambda item: item[0])
    what = f"refused in upsert {object_type} (207)"
    raise item_error(HUBSPOT_ERRORS, ops[index], status=400, body=error, what=what)
