"""The Salesforce connector: sObject Collections upserts by external-id fields.

- contacts: ``PATCH /composite/sobjects/Contact/WA_Contact_Key__c`` (≤ 200 records per
  call, one sObject type per call, ``allOrNone: false``); consent fields on Contact. A
  Contact the book does not know is first looked for among the org's own (one SOQL by
  external id and e-mail, one SOSL over phone fields: :mod:`.lookup`) and, when found by
  phone or e-mail, adopted: our external id is written onto it by Id (``PATCH
  /composite/sobjects``).
- cases: Case upserted by ``WA_Case_Key__c``, linked to its contact by the contact's
  external id (``"Contact": {"WA_Contact_Key__c": …}``), so no id lookup is needed;
  outcomes are Case fields (Contact fields when the operation names no case).
- deals: a case's sale (the mapping's ``upsert_deal``), an Opportunity upserted by
  ``WA_Deal_Key__c`` (the case key), its ``ContactId`` set by the contact's external id,
  its stage translated (open, won, lost → ``SalesforceOptions.deal_stages``); a new one
  gets a Name, the open stage and a CloseDate (required) when the mapping gives none.
- notes: Task upserted by ``WA_Note_Key__c`` (the wamid, else the idempotency key), with
  ``Who``/``What`` relationships by external id; a status update keeps the Description.

A Contact's default ``LastName`` (required to create one) is sent only for contacts that
do not exist yet, like the mapping's ``on_create`` fields; ``if_empty`` ones only where
the record holds no value (see :class:`~wa_bridge.connectors._records.RecordConnector`),
so an update never overwrites the real last name. A Case or Task refused because the
Contact (or Case) it names by external id is gone (a user deleted it) has that record
written again in full, then is retried once.

A batch's upserts of several sObjects (Contact, Case, Opportunity, Task collections) go
as the subrequests of one ``POST /composite`` (one API call; at most 5 sObject Collections
in one), in that order, so the Case finds the Contact written just before it; an sObject
alone is its own collection call. A subrequest's own failure (a field missing: 400
``INVALID_FIELD``) fails the batch like that call alone would.

Salesforce answers 200 even when records failed: each item's ``success`` is checked and a
failed record's operations are refused with Salesforce's message. Custom fields are
``WA_<Name>__c`` (:mod:`.fields`); they must exist in the org as the setup guide lists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import httpx

from wa_bridge.connectors import _records as shared
from wa_bridge.connectors._naming import one_name
from wa_bridge.connectors.http import classify, send
from wa_bridge.connectors.salesforce import lookup
from wa_bridge.connectors.salesforce.dialect import SALESFORCE_ERRORS
from wa_bridge.connectors.salesforce.fields import (
    CASE_KEY_REF,
    EXTERNAL_IDS,
    SObject,
    case_field,
    consent_fields,
    contact_field,
    deal_field,
    outcome_field,
    task_field,
)
from wa_bridge.errors import CrmUnavailable
from wa_bridge.operations import CrmOperation, FieldValue

__all__ = ["DEFAULT_DEAL_STAGES", "SalesforceConnector", "SalesforceOptions"]

_Record = shared.Record[Any]


# A deal's stage (the mapping's open | won | lost): Salesforce's standard StageName values.
DEFAULT_DEAL_STAGES: Final[Mapping[str, str]] = {
    "open": "Prospecting",
    "won": "Closed Won",
    "lost": "Closed Lost",
}


# A case's status (the mapping's open | pending | resolved | closed): the Case Status
# values of a new org.
DEFAULT_CASE_STATUSES: Final = shared.case_statuses(
    open="New", pending="Working", resolved="Closed", closed="Closed"
)


@dataclass(frozen=True, slots=True)
class SalesforceOptions:
    api_version: str = "v61.0"
    case_statuses: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CASE_STATUSES))
    default_last_name: str = "WhatsApp contact"
    deal_stages: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_DEAL_STAGES))
    default_deal_name: str = "WhatsApp sale"


def _value(value: FieldValue) -> Any:
    if isinstance(value, tuple):
        return ";".join("" if v is None else str(_value(v)) for v in value)  # multi-picklist
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, Decimal):
        return float(value)  # Salesforce number fields take JSON numbers
    return value


def _date(value: datetime) -> str:
    """A Date field's value: the UTC day."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).date().isoformat()


def _values(fields: Mapping[str, FieldValue], name: Callable[[str], str] = str) -> dict[str, Any]:
    """``fields`` as Salesforce values, under the field ``name`` gives each."""
    return {name(k): _value(v) for k, v in fields.items()}


def _by_external_id(sobject: SObject, key: str | None) -> dict[str, Any]:
    """A relationship to the ``sobject`` record whose external id is ``key``."""
    return {"attributes": {"type": sobject}, EXTERNAL_IDS[sobject]: key}


def _keyed(
    group: SObject, chunk: Sequence[_Record], values: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The records of an upsert by ``group``'s external id."""
    external_id = EXTERNAL_IDS[group]
    return [
        {"attributes": {"type": group}, external_id: r.key, **v}
        for r, v in zip(chunk, values, strict=True)
    ]


def _results(action: str, chunk: Sequence[_Record], items: Any) -> shared.Upserted[Any]:
    """An sObject Collections answer (one result per record, in order): ids and refusals."""
    if not isinstance(items, list) or len(items) != len(chunk):
        raise CrmUnavailable(f"salesforce: {action} answered an unexpected body")
    answer: shared.Upserted[Any] = shared.Upserted()
    for record, item in zip(chunk, items, strict=True):
        if item.get("success"):
            answer.ids[record.key] = (str(item["id"]), bool(item.get("created")))
        else:
            answer.refused.append((record, item.get("errors")))
    return answer


def _codes(body: Any) -> list[tuple[str, str]]:
    """(code, message) of each error of a refused record."""
    items = body if isinstance(body, list) else []
    return [
        (str(i.get("statusCode") or i.get("errorCode") or ""), str(i.get("message") or ""))
        for i in items
        if isinstance(i, dict)
    ]


class SalesforceConnector(shared.RecordConnector[SObject, Any, SalesforceOptions]):
    """Salesforce's translation (REST API) of the shared record shape (see the module doc)."""

    name = "salesforce"
    max_batch = 200
    groups = tuple(EXTERNAL_IDS)  # in write order
    contact_group = "Contact"
    case_group = "Case"
    errors = SALESFORCE_ERRORS
    default_options = SalesforceOptions
    # a batch's Contact, Case, Opportunity and Task upserts go in one POST /composite:
    # one API call, at most 5 sObject Collections subrequests in it
    upserts_per_request = 5
    company_fields = ((contact_field("phone_e164"), "phone"), (contact_field("email"), "email"))

    def _configure(self) -> None:
        self.base = f"/services/data/{self.options.api_version}"

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    # --- translation ------------------------------------------------------------------
    def _translate(self, op: CrmOperation) -> shared.Write[SObject, Any]:
        contact_key = shared.require_key(op, "contact_key")
        fields = op.fields
        if op.kind == "upsert_contact":
            return shared.Write(
                "Contact",
                contact_key,
                _values(fields, contact_field),
                {"LastName": self.options.default_last_name},
                shared.modes_of(op, one_name(contact_field)),
                facts=shared.MatchFacts.of(op),
            )
        if op.kind == "set_consent":
            return shared.Write("Contact", contact_key, _values(consent_fields(fields)))
        if op.kind == "upsert_case":
            return shared.Write(
                "Case",
                shared.require_key(op, "case_key"),
                self._case_fields(op),
                modes=shared.modes_of(op, one_name(case_field)),
                contact_key=contact_key,
            )
        if op.kind == "upsert_deal":
            return shared.Write(
                "Opportunity",
                shared.require_key(op, "case_key"),
                self._opportunity_fields(op, contact_key),
                self._opportunity_defaults(op),
                shared.modes_of(op, one_name(deal_field)),
                contact_key=contact_key,
                case_key=op.case_key,
            )
        if op.kind == "record_outcome":
            out = _values(fields, outcome_field)
            modes = shared.modes_of(op, one_name(outcome_field))
            if op.case_key:
                return shared.Write("Case", op.case_key, out, modes=modes, contact_key=contact_key)
            return shared.Write("Contact", contact_key, out, modes=modes)
        status_only = shared.is_status_only(fields)
        return shared.Write(
            "Task",
            shared.note_key(op),
            self._task_fields(op, contact_key),
            modes=shared.modes_of(
                op, one_name(lambda f: task_field(f, is_status_only=status_only))
            ),
            contact_key=contact_key,
            case_key=op.case_key,
        )

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

    def _opportunity_fields(self, op: CrmOperation, contact_key: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Contact": {EXTERNAL_IDS["Contact"]: contact_key},
            CASE_KEY_REF: op.case_key,
        }
        for name, value in op.fields.items():
            if name == "stage":
                out["StageName"] = shared.deal_stage(
                    op, self.options.deal_stages, "Salesforce StageName"
                )
            elif name == "closed_at" and isinstance(value, datetime):
                out["CloseDate"] = _date(value)
            else:
                out[deal_field(name)] = _value(value)
        return out

    def _opportunity_defaults(self, op: CrmOperation) -> dict[str, Any]:
        """What Salesforce requires to create an Opportunity: a Name, a StageName and a
        CloseDate (the day it closed, else the day of the event)."""
        when = op.fields.get("closed_at") or op.fields.get("occurred_at")
        day = when if isinstance(when, datetime) else datetime.now(UTC)
        return {
            "Name": self.options.default_deal_name,
            "StageName": self.options.deal_stages["open"],
            "CloseDate": _date(day),
        }

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
        chunk: Sequence[_Record],
        values: Sequence[Mapping[str, Any]],
    ) -> shared.Upserted[Any]:
        return await self._collection(
            "PATCH",
            self._upsert_url(group),
            f"upsert {group}",
            chunk,
            _keyed(group, chunk, values),
        )

    def _upsert_url(self, group: SObject) -> str:
        return f"{self.base}/composite/sobjects/{group}/{EXTERNAL_IDS[group]}"

    async def _upsert_together(
        self, parts: Sequence[tuple[SObject, Sequence[_Record], Sequence[Mapping[str, Any]]]]
    ) -> list[shared.Upserted[Any]]:
        """The upserts of ``parts`` as the subrequests of one ``POST /composite`` (one API
        call), run in order; a subrequest's own failure is raised as that upsert's
        failure would be (the ones before it are written: upserts by key, so the retry
        writes them again without a duplicate)."""
        if len(parts) == 1:
            return [await self._upsert(*parts[0])]
        subrequests = [
            {
                "method": "PATCH",
                "url": self._upsert_url(group),
                "referenceId": f"{group}{index}",
                "body": {"allOrNone": False, "records": _keyed(group, chunk, values)},
            }
            for index, (group, chunk, values) in enumerate(parts)
        ]
        action = "upsert " + "+".join(dict.fromkeys(group for group, _, _ in parts))
        response = await send(
            self._client,
            "POST",
            f"{self.base}/composite",
            dialect=SALESFORCE_ERRORS,
            action=action,
            json={"allOrNone": False, "compositeRequest": subrequests},
        )
        body = response.json() if response.content else None
        answers = body.get("compositeResponse") if isinstance(body, dict) else None
        if not isinstance(answers, list) or len(answers) != len(parts):
            raise CrmUnavailable(f"salesforce: {action} answered an unexpected body")
        out: list[shared.Upserted[Any]] = []
        for (group, chunk, _), answer in zip(parts, answers, strict=True):
            part = answer if isinstance(answer, dict) else {}
            status = part.get("httpStatusCode")
            if status != 200:
                where = f"salesforce: upsert {group} got HTTP {status} inside {action}"
                status = status if isinstance(status, int) else 500
                raise classify(SALESFORCE_ERRORS, status, part.get("body"), where=where)
            out.append(_results(f"upsert {group}", chunk, part.get("body")))
        return out

    async def _update(
        self, group: SObject, items: Sequence[tuple[_Record, str, Mapping[str, Any]]]
    ) -> shared.Upserted[Any]:
        """Adopted records, by Id: our external id written onto each."""
        external_id = EXTERNAL_IDS[group]
        records = [
            {"attributes": {"type": group}, "Id": crm_id, **values, external_id: record.key}
            for record, crm_id, values in items
        ]
        chunk = [record for record, _, _ in items]
        return await self._collection(
            "PATCH", f"{self.base}/composite/sobjects", f"update {group}", chunk, records
        )

    async def _collection(
        self,
        method: str,
        url: str,
        action: str,
        chunk: Sequence[_Record],
        records: list[dict[str, Any]],
    ) -> shared.Upserted[Any]:
        """Send an sObject Collections request; each record's id, or its errors."""
        response = await send(
            self._client,
            method,
            url,
            dialect=SALESFORCE_ERRORS,
            action=action,
            json={"allOrNone": False, "records": records},
        )
        return _results(action, chunk, response.json())

    async def _lookup(
        self, group: SObject, keys: Sequence[str], names: Sequence[str]
    ) -> dict[str, shared.Candidate]:
        return await lookup.by_key(self, group, keys, names)

    async def _find_contacts(
        self, records: Sequence[_Record], names: Sequence[str]
    ) -> list[shared.Candidate]:
        return await lookup.contacts(self, records, names)

    def _wants_create(self, body: Any) -> bool:
        return any(code == "REQUIRED_FIELD_MISSING" for code, _ in _codes(body))

    def _missing_link(self, body: Any) -> bool:
        return any(
            code == "INVALID_FIELD" and message.startswith("Foreign key external ID")
            for code, message in _codes(body)
        )
