"""The HubSpot connector: batch upserts by wa-bridge's own unique properties.

- contacts: ``POST …/contacts/batch/upsert`` with ``idProperty`` = ``wa_contact_key``;
  a contact the book does not know is first looked for among the portal's own (one
  search per batch, :mod:`.search`) and, when found by phone or e-mail, adopted: our key
  is written onto it by id (``batch/update``). Consent is stored as contact properties
  (HubSpot's consent API is e-mail only).
- cases: tickets upserted by ``wa_case_key``; outcomes are ticket properties (contact
  properties when the operation names no case).
- deals: a case's sale (the mapping's ``upsert_deal``), upserted by ``wa_deal_key`` (the
  case key) in the configured pipeline, its stage translated (open, won, lost →
  ``HubSpotOptions.deal_stages``); associated with its contact and its ticket.
- notes: WhatsApp communications (``hs_communication_channel_type=WHATS_APP``) upserted
  by ``wa_note_key`` (the wamid, else the operation's idempotency key), so a status update
  changes the same record and keeps its body.
- associations: ticket → contact, note → contact and note → ticket, deal → contact and
  ticket. A ticket or note new to the book is created (``batch/create``) with its links
  inline, by the ids this call and the book hold: no request of their own. One that existed
  already (an earlier attempt made it and its commit was lost) or had an id missing, and
  every deal, is upserted and then linked by the v4 batch "associate default" endpoint
  (:mod:`.links`), once.

Create-only defaults (a ticket's ``subject`` and ``hs_pipeline``, a deal's name and
stage, a status-only note's
``hs_timestamp``) are sent only for records that do not exist yet, like the mapping's
``on_create`` fields; ``if_empty`` ones only where the record holds no value (see
:class:`~wa_bridge.connectors._records.RecordConnector`), so an update never overwrites
what an agent set in HubSpot. Every input carries an ``objectWriteTraceId`` (our key), so
HubSpot answers a refused record in a 207 instead of refusing the whole batch.

Property values are sent as strings (HubSpot's spec types them so). The unique properties
must exist in the portal with ``hasUniqueValue: true``; every other ``wa_*`` property
must exist too. Paths: ``/crm/v3/objects/`` or, with ``api_style="2026-03"``,
``/crm/objects/2026-03/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from wa_bridge.connectors import _records as shared
from wa_bridge.connectors._naming import one_name
from wa_bridge.connectors.http import send
from wa_bridge.connectors.hubspot import links, search
from wa_bridge.connectors.hubspot.dialect import HUBSPOT_ERRORS
from wa_bridge.connectors.hubspot.properties import (
    CASE_KEY_REF,
    CONTACT_KEY_REF,
    HubSpotOptions,
    consent_properties,
    contact_property,
    deal_property,
    note_property,
    outcome_property,
    property_value,
    ticket_property,
)
from wa_bridge.errors import PermanentError
from wa_bridge.operations import CrmOperation, FieldValue

__all__ = ["HubSpotConnector"]

Group = Literal["contacts", "tickets", "deals", "notes"]
_Write = shared.Write[Group, str]
_Record = shared.Record[str]
_Call = shared.WriteCall[Group, str]
_STAGE = frozenset({"hs_pipeline_stage", "hs_pipeline"})
_DEAL_STAGE = frozenset({"dealstage", "pipeline"})


def _values(fields: Mapping[str, FieldValue], name: Callable[[str], str] = str) -> dict[str, str]:
    """``fields`` as property strings, under the property ``name`` gives each field."""
    return {name(k): property_value(v) for k, v in fields.items()}


class HubSpotConnector(shared.RecordConnector[Group, str, HubSpotOptions]):
    """HubSpot's translation of the shared record shape (see the module docstring)."""

    name = "hubspot"
    max_batch = 100
    groups = ("contacts", "tickets", "deals", "notes")
    contact_group = "contacts"
    case_group = "tickets"
    errors = HUBSPOT_ERRORS
    default_options = HubSpotOptions
    creates_linked = frozenset({"tickets", "notes"})
    company_fields = (
        (contact_property("phone_e164"), "phone"),
        (contact_property("email"), "email"),
    )

    def _configure(self) -> None:
        o = self.options
        if o.api_style == "v3":
            self.objects, self.associations = "/crm/v3/objects", "/crm/v4/associations"
        else:
            self.objects = f"/crm/objects/{o.api_style}"
            self.associations = f"/crm/associations/{o.api_style}"
        self.id_properties: Mapping[Group, str] = {
            "contacts": o.contact_id_property,
            "tickets": o.case_id_property,
            "deals": o.deal_id_property,
            "notes": o.note_id_property,
        }

    def _object_type(self, group: Group) -> str:
        return self.options.note_object if group == "notes" else group

    # --- translation ------------------------------------------------------------------
    def _translate(self, op: CrmOperation) -> _Write:
        contact_key = shared.require_key(op, "contact_key")
        if op.kind == "upsert_contact":
            return shared.Write(
                "contacts",
                contact_key,
                _values(op.fields, contact_property),
                modes=shared.modes_of(op, one_name(contact_property)),
                facts=shared.MatchFacts.of(op),
            )
        if op.kind == "set_consent":
            return shared.Write("contacts", contact_key, _values(consent_properties(op.fields)))
        if op.kind == "upsert_case":
            case_key = shared.require_key(op, "case_key")
            props, defaults = self._ticket_properties(op)
            modes = shared.modes_of(op, self._ticket_names)
            return shared.Write(
                "tickets",
                case_key,
                props,
                defaults,
                modes,
                contact_key=contact_key,
                together=_STAGE,  # HubSpot checks a stage against the ticket's pipeline
            )
        if op.kind == "upsert_deal":
            props, defaults = self._deal_properties(op)
            return shared.Write(
                "deals",
                shared.require_key(op, "case_key"),
                props,
                defaults,
                shared.modes_of(op, one_name(deal_property)),
                contact_key=contact_key,
                case_key=op.case_key,
                together=_DEAL_STAGE,  # a stage belongs to its pipeline
            )
        if op.kind == "record_outcome":
            props = _values(op.fields, outcome_property)
            modes = shared.modes_of(op, one_name(outcome_property))
            if op.case_key:
                return shared.Write(
                    "tickets", op.case_key, props, modes=modes, contact_key=contact_key
                )
            return shared.Write("contacts", contact_key, props, modes=modes)
        props, defaults = self._note_properties(op)
        status_only = shared.is_status_only(op.fields)
        return shared.Write(
            "notes",
            shared.note_key(op),
            props,
            defaults,
            shared.modes_of(
                op,
                one_name(
                    lambda f: note_property(f, is_status_only=status_only, options=self.options)
                ),
            ),
            contact_key=contact_key,
            case_key=op.case_key,
        )

    @staticmethod
    def _ticket_names(field: str) -> Iterable[str]:
        """The properties a case field is written to (a status moves the stage too)."""
        if field == "status":
            return ("hs_pipeline_stage", "hs_pipeline", ticket_property(field))
        return (ticket_property(field),)

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

    def _deal_properties(self, op: CrmOperation) -> tuple[dict[str, str], dict[str, str]]:
        """The deal's properties, and the create-only defaults (name, pipeline, stage)."""
        o = self.options
        defaults = {
            "dealname": o.default_deal_name,
            "pipeline": o.deal_pipeline,
            "dealstage": o.deal_stages["open"],
        }
        props: dict[str, str] = {}
        for name, value in op.fields.items():
            if name == "stage":
                stage = shared.deal_stage(op, o.deal_stages, "HubSpot deal stage")
                props["dealstage"], props["pipeline"] = stage, o.deal_pipeline
            else:
                props[deal_property(name)] = property_value(value)
        props[CONTACT_KEY_REF] = property_value(op.contact_key)
        if op.case_key:
            props[CASE_KEY_REF] = op.case_key
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
        self, group: Group, chunk: Sequence[_Record], values: Sequence[Mapping[str, str]]
    ) -> shared.Upserted[str]:
        object_type, id_property = self._object_type(group), self.id_properties[group]
        inputs = [
            {
                "id": r.key,
                "idProperty": id_property,
                "objectWriteTraceId": r.key,
                "properties": dict(properties),
            }
            for r, properties in zip(chunk, values, strict=True)
        ]
        data = await self.post(
            f"{self.objects}/{object_type}/batch/upsert", f"upsert {object_type}", inputs
        )
        answer = shared.Upserted(refused=_refused(data, {r.key: r for r in chunk}))
        results = data.get("results") or []
        for position, result in enumerate(results):
            key = result.get("objectWriteTraceId") or (result.get("properties") or {}).get(
                id_property
            )
            if key is None and len(results) == len(chunk):
                key = chunk[position].key  # HubSpot did not echo the property: same order
            answer.ids[str(key)] = (str(result["id"]), bool(result.get("new", False)))
        return answer

    async def _create(
        self, call: _Call, group: Group, chunk: Sequence[tuple[_Record, Mapping[str, str]]]
    ) -> shared.Upserted[str]:
        """Batch create with the links inline (see the module docstring)."""
        object_type, id_property = self._object_type(group), self.id_properties[group]
        inputs: list[dict[str, Any]] = []
        inline: dict[str, list[tuple[Group, str, str, int]]] = {}
        for record, values in chunk:
            links_of = inline[record.key] = self._inline_links(call, group, record)
            inputs.append(
                {
                    "objectWriteTraceId": record.key,
                    "properties": {**values, id_property: record.key},
                    "associations": [
                        {"to": {"id": to_id}, "types": [links.default_type(type_id)]}
                        for _, _, to_id, type_id in links_of
                    ],
                }
            )
        try:
            data = await self.post(
                f"{self.objects}/{object_type}/batch/create", f"create {object_type}", inputs
            )
        except PermanentError:
            return shared.Upserted()  # all upserted by key, where a refusal is told
        answer: shared.Upserted[str] = shared.Upserted()
        for result in data.get("results") or []:
            key = result.get("objectWriteTraceId") or (result.get("properties") or {}).get(
                id_property
            )
            if key is None or str(key) not in inline:
                continue
            answer.ids[str(key)] = (str(result["id"]), True)
            call.linked.update((group, str(key), g, k) for g, k, _, _ in inline[str(key)])
        return answer

    def _inline_links(
        self, call: _Call, group: Group, record: _Record
    ) -> list[tuple[Group, str, str, int]]:
        """(linked group, key, CRM id, association type) of the links ``record`` can be
        created with: those whose ids are known."""
        out = []
        for to_group, to_key in self._links(group, record):
            to_id = call.id_of(to_group, to_key)
            pair = (self._object_type(group), self._object_type(to_group))
            type_id = links.DEFAULT_TYPE_IDS.get(pair)
            if to_id is not None and type_id is not None:
                out.append((to_group, to_key, to_id, type_id))
        return out

    async def _update(
        self, group: Group, items: Sequence[tuple[_Record, str, Mapping[str, str]]]
    ) -> shared.Upserted[str]:
        """Adopted records, by id: our key property written onto each."""
        object_type, id_property = self._object_type(group), self.id_properties[group]
        inputs = [
            {
                "id": crm_id,
                "objectWriteTraceId": record.key,
                "properties": {**values, id_property: record.key},
            }
            for record, crm_id, values in items
        ]
        data = await self.post(
            f"{self.objects}/{object_type}/batch/update", f"update {object_type}", inputs
        )
        by_key = {record.key: record for record, _, _ in items}
        by_id = {crm_id: record for record, crm_id, _ in items}
        answer = shared.Upserted(refused=_refused(data, by_key, by_id))
        for result in data.get("results") or []:
            record = by_id.get(str(result.get("id")))
            key = result.get("objectWriteTraceId") or (record.key if record else None)
            if key is not None:
                answer.ids[str(key)] = (str(result["id"]), False)
        return answer

    async def _lookup(
        self, group: Group, keys: Sequence[str], names: Sequence[str]
    ) -> dict[str, shared.Candidate]:
        """Existing records by our unique property (batch read)."""
        object_type, id_property = self._object_type(group), self.id_properties[group]
        found: dict[str, shared.Candidate] = {}
        for start in range(0, len(keys), self.max_batch):
            inputs = [{"id": k} for k in keys[start : start + self.max_batch]]
            data = await self.post(
                f"{self.objects}/{object_type}/batch/read",
                f"read {object_type}",
                inputs,
                idProperty=id_property,
                properties=[id_property, *names],
            )
            for result in data.get("results") or []:
                props = result.get("properties") or {}
                key = props.get(id_property)
                if key is not None:
                    values = {n: props.get(n) for n in names}
                    found[str(key)] = shared.Candidate(str(result["id"]), str(key), values=values)
        return found

    async def _find_contacts(
        self, records: Sequence[_Record], names: Sequence[str]
    ) -> list[shared.Candidate]:
        return await search.find_contacts(self, records, names)

    def _wants_create(self, body: Any) -> bool:
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        return "Missing required properties" in message

    async def _after(self, call: shared.WriteCall[Group, str]) -> None:
        await links.associate(self, call)

    async def post(
        self, url: str, action: str, inputs: list[dict[str, Any]], **extra: Any
    ) -> dict[str, Any]:
        """POST a batch body (``inputs`` plus ``extra`` members); its JSON answer."""
        return await self.post_body(url, action, {**extra, "inputs": inputs})

    async def post_body(self, url: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body``; its JSON answer (an object), or raise a :mod:`wa_bridge.errors` one."""
        response = await send(
            self._client, "POST", url, dialect=HUBSPOT_ERRORS, action=action, json=body
        )
        data = response.json() if response.content else {}
        return data if isinstance(data, dict) else {}


def _refused(
    data: Mapping[str, Any],
    by_key: Mapping[str, _Record],
    by_id: Mapping[str, _Record] | None = None,
) -> list[tuple[_Record, Any]]:
    """The records HubSpot refused in a 207 answer, each with its error."""
    refused: list[tuple[_Record, Any]] = []
    for error in data.get("errors") or []:
        if not isinstance(error, dict):
            continue
        context = error.get("context") or {}
        keys = [*(context.get("objectWriteTraceId") or []), *(context.get("ids") or [])]
        if error.get("id") is not None:
            keys.append(error["id"])
        records = {
            id(r): r
            for k in keys
            if (r := by_key.get(str(k)) or (by_id or {}).get(str(k))) is not None
        }
        if not records and by_key:
            first = next(iter(by_key.values()))
            records = {id(first): first}
        refused.extend((record, error) for record in records.values())
    return refused
