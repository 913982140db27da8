"""Finding existing Salesforce records: SOQL by external id (and e-mail), SOSL by phone.

- :func:`by_key`: ``SELECT Id, <ext id>, … FROM <sObject> WHERE <ext id> IN (…)``;
- :func:`contacts`: the batch's unknown contacts in one SOQL (``WA_Contact_Key__c IN (…)
  OR Email IN (…)``) plus one SOSL over ``PHONE FIELDS`` (phone fields are stored as
  typed; SOSL finds them whatever the formatting), with every form of each number
  (:func:`~wa_bridge.normalize.phone_forms.search_digits`) as ``OR``-ed terms.

Both are split only when a query would outgrow :data:`QUERY_MAX_CHARS` (Salesforce refuses
URLs over 16,384 bytes); answers of at most 200 keys fit one SOQL page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from wa_bridge.connectors import _records as shared
from wa_bridge.connectors._matching import modified_at
from wa_bridge.connectors.http import send
from wa_bridge.connectors.salesforce.dialect import SALESFORCE_ERRORS
from wa_bridge.connectors.salesforce.fields import EXTERNAL_IDS, SObject
from wa_bridge.normalize.phone_forms import search_digits

if TYPE_CHECKING:
    from wa_bridge.connectors.salesforce.connector import SalesforceConnector

__all__ = ["PHONE_FIELDS", "QUERY_MAX_CHARS", "by_key", "contacts", "soql_string"]

# SOQL / SOSL text per request: keeps the GET URL well under Salesforce's 16,384 bytes.
QUERY_MAX_CHARS: Final = 6_000
PHONE_FIELDS: Final = ("Phone", "MobilePhone", "HomePhone", "OtherPhone")
_CONTACT_FIELDS: Final = ("Id", EXTERNAL_IDS["Contact"], *PHONE_FIELDS, "Email", "LastModifiedDate")


def soql_string(value: str) -> str:
    """``value`` as a SOQL string literal (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _conditions(parts: Sequence[tuple[str, Sequence[str]]], room: int) -> list[str]:
    """``field IN (…)`` conditions, ORed, packed into strings of at most ``room`` characters
    (one per query)."""
    clauses: list[str] = []
    for name, literals in parts:
        chunk: list[str] = []
        size = len(name) + 6
        for literal in literals:
            if chunk and size + len(literal) + 1 > room:
                clauses.append(f"{name} IN ({','.join(chunk)})")
                chunk, size = [], len(name) + 6
            chunk.append(literal)
            size += len(literal) + 1
        if chunk:
            clauses.append(f"{name} IN ({','.join(chunk)})")
    return _packed(clauses, " OR ", room)


def _packed(items: Sequence[str], joint: str, room: int) -> list[str]:
    """``items`` joined by ``joint`` into strings of at most ``room`` characters."""
    out: list[str] = []
    current = ""
    for item in items:
        if current and len(current) + len(joint) + len(item) > room:
            out.append(current)
            current = ""
        current = f"{current}{joint}{item}" if current else item
    if current:
        out.append(current)
    return out


async def _get(connector: SalesforceConnector, path: str, q: str, action: str) -> Any:
    response = await send(
        connector.client,
        "GET",
        f"{connector.base}/{path}",
        dialect=SALESFORCE_ERRORS,
        action=action,
        params={"q": q},
    )
    return response.json()


async def by_key(
    connector: SalesforceConnector, sobject: SObject, keys: Sequence[str], names: Sequence[str]
) -> dict[str, shared.Candidate]:
    """``sobject`` records by external id, with the current values of ``names``."""
    external_id = EXTERNAL_IDS[sobject]
    fields = ", ".join(dict.fromkeys(["Id", external_id, *names]))
    head = f"SELECT {fields} FROM {sobject} WHERE "
    found: dict[str, shared.Candidate] = {}
    literals = [soql_string(k) for k in keys]
    for where in _conditions([(external_id, literals)], QUERY_MAX_CHARS - len(head)):
        data = await _get(connector, "query", head + where, f"look up {sobject}")
        for row in _rows(data, "records"):
            key = row.get(external_id)
            if key and row.get("Id"):
                values = {n: row.get(n) for n in names}
                found[str(key)] = shared.Candidate(str(row["Id"]), str(key), values=values)
    return found


async def contacts(
    connector: SalesforceConnector, records: Sequence[shared.Record[Any]], names: Sequence[str]
) -> list[shared.Candidate]:
    """The org's Contacts found by our key, an e-mail or a phone form of ``records``."""
    order = connector.match_order
    fields = list(dict.fromkeys([*_CONTACT_FIELDS, *names]))
    keys = sorted({r.key for r in records})
    emails = sorted(
        {r.facts.email.strip().lower() for r in records if r.facts.email and "email" in order}
    )
    phones: set[str] = set()
    for record in records:
        if record.facts.phone_e164 and "phone" in order:
            phones.update(search_digits(record.facts.phone_e164))
    found: dict[str, shared.Candidate] = {}
    head = f"SELECT {', '.join(fields)} FROM Contact WHERE "
    parts = [
        (EXTERNAL_IDS["Contact"], [soql_string(k) for k in keys]),
        ("Email", [soql_string(e) for e in emails]),
    ]
    for where in _conditions([p for p in parts if p[1]], QUERY_MAX_CHARS - len(head)):
        data = await _get(connector, "query", head + where, "look up Contact")
        for row in _rows(data, "records"):
            found[str(row["Id"])] = _candidate(row, names)
    returning = f" IN PHONE FIELDS RETURNING Contact({', '.join(fields)})"
    for terms in _packed(sorted(phones), " OR ", QUERY_MAX_CHARS - len(returning) - 8):
        data = await _get(connector, "search", f"FIND {{{terms}}}{returning}", "search Contact")
        for row in _rows(data, "searchRecords"):
            found[str(row["Id"])] = _candidate(row, names)
    return list(found.values())


def _rows(data: Any, member: str) -> list[dict[str, Any]]:
    rows = data.get(member) if isinstance(data, dict) else None
    return [r for r in rows or [] if isinstance(r, dict) and r.get("Id")]


def _candidate(row: dict[str, Any], names: Sequence[str]) -> shared.Candidate:
    key = row.get(EXTERNAL_IDS["Contact"])
    return shared.Candidate(
        crm_id=str(row["Id"]),
        key=str(key) if key else None,
        phones=tuple(str(row[f]) for f in PHONE_FIELDS if row.get(f)),
        email=str(row["Email"]) if row.get("Email") else None,
        modified=modified_at(row.get("LastModifiedDate")),
        values={n: row.get(n) for n in names},
    )
