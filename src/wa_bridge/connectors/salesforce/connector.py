"""The Salesforce connector: sObject Collections upserts by external-id fields.

- contacts: ``PATCH /composite/sobjects/Contact/WA_Contact_Key__c`` (≤ 200 records per
  call, one sObject type per call, ``allOrNone: false``); consent fields on Contact.
- cases: Case upserted by ``WA_Case_Key__c``, linked to its contact by the contact's
  external id (``"Contact": {"WA_Contact_Key__c": …}``), so no id lookup is needed;
  outcomes are Case fields (Contact fields when the operation names no case).
- notes: Task upserted by ``WA_Note_Key__c`` (the wamid, else the idempotency key), with
  ``Who``/``What`` relationships by external id; a status update keeps the Description.

A Contact's default ``LastName`` (required to create one) is sent only for contacts that
do not exist yet (the shared :class:`~wa_bridge.connectors._records.RecordConnector` looks
unknown keys up first, here by one SOQL query per upsert batch), so an update never
overwrites the real last name.

Salesforce answers 200 even when records failed: each item's ``success`` is checked and
the earliest failed operation raises CrmRejected with Salesforce's message. Custom fields
are ``WA_<Name>__c`` (:mod:`.fields`); they must exist in the org as the setup guide lists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import httpx

from wa_bridge.connectors import _records as shared
from wa_bridge.connectors.http import send
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
from wa_bridge.errors import CrmUnavailable
from wa_bridge.operations import CrmOperation, FieldValue

__all__ = ["SalesforceConnector", "SalesforceOptions"]

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


def _values(fields: Mapping[str, FieldValue], name: Callable[[str], str] = str) -> dict[str, Any]:
    """``fields`` as Salesforce values, under the field ``name`` gives each."""
    return {name(k): _value(v) for k, v in fields.items()}


def _by_external_id(sobject: SObject, key: str | None) -> dict[str, Any]:
    """A relationship to the ``sobject`` record whose external id is ``key``."""
    return {"attributes": {"type": sobject}, EXTERNAL_IDS[sobject]: key}


class SalesforceConnector(shared.RecordConnector[SObject, Any]):
    """Salesforce's translation (REST API) of the shared record shape (see the module doc)."""

    name = "salesforce"
    max_batch = 200
    groups = tuple(EXTERNAL_IDS)  # in write order
    errors = SALESFORCE_ERRORS

    def __init__(self, client: httpx.AsyncClient, options: SalesforceOptions | None = None) -> None:
        super().__init__(client)
        self.options = options or SalesforceOptions()
        self._base = f"/services/data/{self.options.api_version}"

    # --- translation ------------------------------------------------------------------
    def _translate(self, op: CrmOperation) -> shared.Write[SObject, Any]:
        contact_key = shared.require_key(op, "contact_key")
        fields = op.fields
        if op.kind == "upsert_contact":
            defaults = {"LastName": self.options.default_last_name}
            return shared.Write("Contact", contact_key, _values(fields, contact_field), defaults)
        if op.kind == "set_consent":
            return shared.Write("Contact", contact_key, _values(consent_fields(fields)))
        if op.kind == "upsert_case":
            return shared.Write("Case", shared.require_key(op, "case_key"), self._case_fields(op))
        if op.kind == "record_outcome":
            out = _values(fields, outcome_field)
            if op.case_key:
                return shared.Write("Case", op.case_key, out)
            return shared.Write("Contact", contact_key, out)
        return shared.Write("Task", shared.note_key(op), self._task_fields(op, contact_key))

    def _case_fields(self, op: CrmOperation) -> dict[str, Any]:
        # linked to its contact by external id: no id lookup needed
        out: dict[str, Any] = {
            "Origin": "WhatsApp",
            "Contact": {EXTERNAL_IDS["Contact"]: op.contact_key},
        }
        for name, value in op.fields.items():
            if name == "status":
                out[case_field(name)] = shared.case_status(
                    op, self.options.case_statuses, "Salesforce Status"
                )
            else:
                out[case_field(name)] = _value(value)
        return out

    def _task_fields(self, op: CrmOperation, contact_key: str) -> dict[str, Any]:
        status_only = shared.is_status_only(op.fields)
        out: dict[str, Any] = {"Who": _by_external_id("Contact", contact_key)}
        if op.case_key:
            out["What"] = _by_external_id("Case", op.case_key)
        if not status_only:
            out.update(Subject="WhatsApp message", Status="Completed")
        for name, value in op.fields.items():
            out[task_field(name, is_status_only=status_only)] = _value(value)
        return out

    # --- requests ---------------------------------------------------------------------
    async def _upsert(
        self,
        group: SObject,
        chunk: Sequence[shared.Record[Any]],
        values: Sequence[Mapping[str, Any]],
    ) -> shared.Upserted[Any]:
        external_id = EXTERNAL_IDS[group]
        body = {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": group}, external_id: r.key, **v}
                for r, v in zip(chunk, values, strict=True)
            ],
        }
        response = await send(
            self._client,
            "PATCH",
            f"{self._base}/composite/sobjects/{group}/{external_id}",
            dialect=SALESFORCE_ERRORS,
            action=f"upsert {group}",
            json=body,
        )
        items = response.json()
        if not isinstance(items, list) or len(items) != len(chunk):
            raise CrmUnavailable(f"salesforce: upsert {group} answered an unexpected body")
        answer: shared.Upserted[Any] = shared.Upserted()
        for record, item in zip(chunk, items, strict=True):
            if item.get("success"):
                answer.ids[record.key] = (str(item["id"]), bool(item.get("created")))
            else:
                answer.refused.append((record, item.get("errors")))
        return answer

    async def _lookup(self, group: SObject, keys: Sequence[str]) -> None:
        """Find the Ids of existing records by external id (SOQL ``IN``, batched by length).

        At most 200 keys per call, so one answer page holds them all (SOQL pages ≥ 200).
        """
        external_id = EXTERNAL_IDS[group]
        head = f"SELECT Id, {external_id} FROM {group} WHERE {external_id} IN ("
        queries: list[list[str]] = []
        size = _QUERY_MAX_CHARS
        for key in keys:
            literal = _soql_string(key)
            if size + len(literal) + 1 > _QUERY_MAX_CHARS:
                queries.append([])
                size = len(head)
            queries[-1].append(literal)
            size += len(literal) + 1
        for literals in queries:
            response = await send(
                self._client,
                "GET",
                f"{self._base}/query",
                dialect=SALESFORCE_ERRORS,
                action=f"look up {group}",
                params={"q": head + ",".join(literals) + ")"},
            )
            data = response.json()
            for row in data.get("records") or [] if isinstance(data, dict) else []:
                if isinstance(row, dict) and row.get(external_id) and row.get("Id"):
                    self._ids.remember(group, str(row[external_id]), str(row["Id"]))


def _soql_string(value: str) -> str:
    """``value`` as a SOQL string literal (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
