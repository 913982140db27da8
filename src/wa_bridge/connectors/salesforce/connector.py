"""The Salesforce connector: sObject Collections upserts by external-id fields.

- contacts: ``PATCH /composite/sobjects/Contact/WA_Contact_Key__c`` (≤ 200 records per
  call, one sObject type per call, ``allOrNone: false``); consent fields on Contact.
- cases: Case upserted by ``WA_Case_Key__c``, linked to its contact by the contact's
  external id (``"Contact": {"WA_Contact_Key__c": …}``), so no id lookup is needed;
  outcomes are Case fields (Contact fields when the operation names no case).
- notes: Task upserted by ``WA_Note_Key__c`` (the wamid, else the idempotency key), with
  ``Who``/``What`` relationships by external id; a status update keeps the Description.

A Contact's default ``LastName`` (required to create one) is sent only for contacts that
do not exist yet: keys missing from the id cache are looked up first by one SOQL query
per upsert batch, so an update never overwrites the real last name.

Salesforce answers 200 even when records failed: each item's ``success`` is checked and
the earliest failed operation raises CrmRejected with Salesforce's message. Custom fields
are ``WA_<Name>__c``; they must exist in the org as the setup guide lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import httpx

from wa_bridge.connectors.base import CrmResult
from wa_bridge.connectors.http import item_error, send
from wa_bridge.connectors.salesforce.dialect import SALESFORCE_ERRORS
from wa_bridge.connectors.salesforce.fields import (
    EXTERNAL_IDS,
    SObject,
    case_field,
    consent_fields,
    contact_field,
    outcome_field,
    task_field,
)
from wa_bridge.errors import CrmUnavailable, MappingOutputInvalid
from wa_bridge.operations import CrmOperation, FieldValue

__all__ = ["SalesforceConnector", "SalesforceOptions"]

_CACHE_MAX: Final = 50_000
# SOQL text per lookup query: keeps the GET URL well under Salesforce's 16,384 bytes.
_QUERY_MAX_CHARS: Final = 6_000


@dataclass(frozen=True, slots=True)
class SalesforceOptions:
    api_version: str = "v61.0"
    case_statuses: Mapping[str, str] = field(
        default_factory=lambda: {"open": "New", "pending": "Working", "resolved": "Closed"}
    )
    default_last_name: str = "WhatsApp contact"


def _value(value: FieldValue) -> Any:
    if isinstance(value, tuple):
        return ";".join("" if v is None else str(_value(v)) for v in value)  # multi-picklist
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, Decimal):
        return float(value)  # Salesforce number fields take JSON numbers
    return value


@dataclass
class _Record:
    key: str
    fields: dict[str, Any]
    op_indexes: list[int]
    # Sent only when the record is created (Salesforce requires them then); never on update.
    create_defaults: dict[str, Any] = field(default_factory=dict)


# sObject type → record key → record, in write order.
_Plan = dict[SObject, dict[str, _Record]]


class SalesforceConnector:
    """A :class:`~wa_bridge.connectors.base.CrmConnector` for Salesforce (REST API)."""

    name = "salesforce"
    max_batch = 200

    def __init__(self, client: httpx.AsyncClient, options: SalesforceOptions | None = None) -> None:
        self._client = client
        self.options = options or SalesforceOptions()
        self._base = f"/services/data/{self.options.api_version}"
        self._ids: dict[tuple[str, str], str] = {}  # (sObject, external id) → record Id

    async def aclose(self) -> None:
        await self._client.aclose()

    async def apply(self, ops: Sequence[CrmOperation]) -> Sequence[CrmResult]:
        """Upsert Contacts, then Cases, then Tasks (merged per record, in order)."""
        plan: _Plan = {"Contact": {}, "Case": {}, "Task": {}}
        targets: dict[int, tuple[str, str]] = {}
        for index, op in enumerate(ops):
            sobject, key, fields = self._translate(op)
            record = plan[sobject].setdefault(key, _Record(key, {}, []))
            record.fields.update(fields)
            if op.kind == "upsert_contact":
                record.create_defaults["LastName"] = self.options.default_last_name
            record.op_indexes.append(index)
            targets[index] = (sobject, key)
        written: dict[tuple[str, str], CrmResult] = {}
        for sobject, records in plan.items():
            written.update(await self._upsert(sobject, list(records.values()), ops))
        return [written[targets[i]] for i in range(len(ops))]

    def _translate(self, op: CrmOperation) -> tuple[SObject, str, dict[str, Any]]:
        contact_key = _required(op.contact_key, "contact_key", op)
        fields = op.fields
        if op.kind == "upsert_contact":
            out = {contact_field(k): _value(v) for k, v in fields.items()}
            return "Contact", contact_key, out
        if op.kind == "set_consent":
            out = {k: _value(v) for k, v in consent_fields(fields).items()}
            return "Contact", contact_key, out
        if op.kind == "upsert_case":
            return "Case", _required(op.case_key, "case_key", op), self._case_fields(op)
        if op.kind == "record_outcome":
            out = {outcome_field(k): _value(v) for k, v in fields.items()}
            if op.case_key:
                return "Case", op.case_key, out
            return "Contact", contact_key, out
        key = str(fields.get("message_id") or op.idempotency_key)
        return "Task", key, self._task_fields(op, contact_key)

    def _case_fields(self, op: CrmOperation) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Origin": "WhatsApp",
            "Contact": {EXTERNAL_IDS["Contact"]: op.contact_key},
        }
        for name, value in op.fields.items():
            if name == "status":
                status = self.options.case_statuses.get(str(value))
                if status is None:
                    raise MappingOutputInvalid(
                        f"upsert_case of event {op.event_id}: no Salesforce Status for status",
                        location=op.source,
                        field="status",
                    )
                out[case_field(name)] = status
            else:
                out[case_field(name)] = _value(value)
        return out

    def _task_fields(self, op: CrmOperation, contact_key: str) -> dict[str, Any]:
        fields = op.fields
        is_status_only = "status" in fields and "body" not in fields and "direction" not in fields
        out: dict[str, Any] = {
            "Who": {"attributes": {"type": "Contact"}, EXTERNAL_IDS["Contact"]: contact_key},
        }
        if op.case_key:
            out["What"] = {"attributes": {"type": "Case"}, EXTERNAL_IDS["Case"]: op.case_key}
        if not is_status_only:
            out.update(Subject="WhatsApp message", Status="Completed")
        for name, value in fields.items():
            out[task_field(name, is_status_only=is_status_only)] = _value(value)
        return out

    async def _upsert(
        self, sobject: SObject, records: list[_Record], ops: Sequence[CrmOperation]
    ) -> dict[tuple[str, str], CrmResult]:
        external_id = EXTERNAL_IDS[sobject]
        out: dict[tuple[str, str], CrmResult] = {}
        for start in range(0, len(records), self.max_batch):
            chunk = records[start : start + self.max_batch]
            fields = await self._with_defaults(sobject, chunk)
            body = {
                "allOrNone": False,
                "records": [
                    {"attributes": {"type": sobject}, external_id: r.key, **f}
                    for r, f in zip(chunk, fields, strict=True)
                ],
            }
            url = f"{self._base}/composite/sobjects/{sobject}/{external_id}"
            response = await send(
                self._client,
                "PATCH",
                url,
                dialect=SALESFORCE_ERRORS,
                action=f"upsert {sobject}",
                json=body,
            )
            items = response.json()
            if not isinstance(items, list) or len(items) != len(chunk):
                raise CrmUnavailable(f"salesforce: upsert {sobject} answered an unexpected body")
            _raise_first_failure(sobject, chunk, items, ops)
            for record, item in zip(chunk, items, strict=True):
                out[(sobject, record.key)] = CrmResult(str(item["id"]), bool(item.get("created")))
                self._remember(sobject, record.key, str(item["id"]))
        return out

    async def _with_defaults(
        self, sobject: SObject, chunk: Sequence[_Record]
    ) -> list[dict[str, Any]]:
        """Each record's fields, plus its create-only defaults if the record is new.

        Keys not in the id cache are looked up first (one query for the chunk), so a
        default never overwrites a value set in Salesforce.
        """
        needed = {
            r.key
            for r in chunk
            if any(name not in r.fields for name in r.create_defaults)
            and (sobject, r.key) not in self._ids
        }
        await self._resolve(sobject, sorted(needed))
        return [
            {**r.create_defaults, **r.fields}
            if r.key in needed and (sobject, r.key) not in self._ids
            else r.fields
            for r in chunk
        ]

    async def _resolve(self, sobject: SObject, keys: Sequence[str]) -> None:
        """Find the Ids of existing records by external id (SOQL ``IN``, batched by length).

        At most 200 keys per call, so one answer page holds them all (SOQL pages ≥ 200).
        """
        external_id = EXTERNAL_IDS[sobject]
        head = f"SELECT Id, {external_id} FROM {sobject} WHERE {external_id} IN ("
        groups: list[list[str]] = []
        size = _QUERY_MAX_CHARS
        for key in keys:
            literal = _soql_string(key)
            if size + len(literal) + 1 > _QUERY_MAX_CHARS:
                groups.append([])
                size = len(head)
            groups[-1].append(literal)
            size += len(literal) + 1
        for group in groups:
            response = await send(
                self._client,
                "GET",
                f"{self._base}/query",
                dialect=SALESFORCE_ERRORS,
                action=f"look up {sobject}",
                params={"q": head + ",".join(group) + ")"},
            )
            data = response.json()
            for row in data.get("records") or [] if isinstance(data, dict) else []:
                if isinstance(row, dict) and row.get(external_id) and row.get("Id"):
                    self._remember(sobject, str(row[external_id]), str(row["Id"]))

    def _remember(self, sobject: str, key: str, record_id: str) -> None:
        if len(self._ids) >= _CACHE_MAX:
            self._ids.clear()  # a cache: Salesforce stays the source of truth
        self._ids[(sobject, key)] = record_id


def _soql_string(value: str) -> str:
    """``value`` as a SOQL string literal (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _raise_first_failure(
    sobject: str, chunk: Sequence[_Record], items: Sequence[Any], ops: Sequence[CrmOperation]
) -> None:
    failed = [
        (min(r.op_indexes), item)
        for r, item in zip(chunk, items, strict=True)
        if not item.get("success")
    ]
    if not failed:
        return
    index, item = min(failed, key=lambda f: f[0])
    what = f"refused in upsert {sobject}"
    raise item_error(SALESFORCE_ERRORS, ops[index], status=400, body=item.get("errors"), what=what)


def _required(value: str | None, what: str, op: CrmOperation) -> str:
    if not value:
        raise MappingOutputInvalid(
            f"{op.kind} of event {op.event_id} has no {what}; the worker must resolve it",
            location=op.source,
        )
    return value
