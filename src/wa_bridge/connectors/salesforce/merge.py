"""Merging two Salesforce Contacts through the REST API: move what hangs on the other.

Salesforce's own merge is a SOAP call (``merge()``); over REST wa-bridge moves the
records that name the other Contact to the kept one, which is what an admin looks for:
its Cases (``ContactId``), Tasks (``WhoId``: our notes) and Opportunities
(``ContactId``), found by one SOQL each and updated by Id through sObject Collections
(200 per request). Then the other Contact:

- created by wa-bridge (``crm_records.match = created``): deleted. It goes to the Recycle
  Bin, where an admin can restore it for 15 days; nothing of ours is left on it.
- the company's own record that wa-bridge adopted (by phone or e-mail): kept, since it
  may hold what we do not move (campaign history, other relations); the output says to
  merge or delete it in Salesforce.

Moving is not undone by ``wa-bridge identity unmerge``: the moved records stay on the
kept Contact, and the other contact's next message finds its old Contact again by our
key if it still exists (restored from the Recycle Bin, or kept), else creates one.
A move that fails part-way raises before our maps change; running the merge again moves
what is left (records already moved are no longer found on the other Contact).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from wa_bridge.connectors.base import CrmConnector
from wa_bridge.connectors.http import send
from wa_bridge.connectors.merging import (
    ContactMerger,
    CrmMergeResult,
    MergeRequest,
    UnmergeRequest,
    crm_ids,
)
from wa_bridge.connectors.salesforce.connector import SalesforceConnector
from wa_bridge.connectors.salesforce.dialect import SALESFORCE_ERRORS
from wa_bridge.connectors.salesforce.lookup import soql_string
from wa_bridge.errors import ConfigError, CrmRejected, CrmUnavailable

__all__ = ["RELATED", "SALESFORCE_MERGER", "merge_contacts"]

# (sObject, the field naming the Contact): what moves to the kept Contact.
RELATED: Final[tuple[tuple[str, str], ...]] = (
    ("Case", "ContactId"),
    ("Task", "WhoId"),
    ("Opportunity", "ContactId"),
)
_PER_CALL: Final = 200


def _salesforce(connector: CrmConnector) -> SalesforceConnector:
    if not isinstance(connector, SalesforceConnector):
        raise ConfigError(f"the Salesforce merge needs its connector, not {connector.name}")
    return connector


async def _ids(sf: SalesforceConnector, sobject: str, field: str, contact_id: str) -> list[str]:
    """Ids of the ``sobject`` records whose ``field`` is ``contact_id`` (every page)."""
    q = f"SELECT Id FROM {sobject} WHERE {field} = {soql_string(contact_id)}"
    response = await send(
        sf.client,
        "GET",
        f"{sf.base}/query",
        dialect=SALESFORCE_ERRORS,
        action=f"find {sobject} to move",
        params={"q": q},
    )
    data: Any = response.json()
    out: list[str] = []
    while True:
        out += [str(r["Id"]) for r in data.get("records") or [] if isinstance(r, dict)]
        next_url = data.get("nextRecordsUrl")
        if data.get("done", True) or not next_url:
            return out
        response = await send(
            sf.client, "GET", str(next_url), dialect=SALESFORCE_ERRORS, action=f"find {sobject}"
        )
        data = response.json()


async def _move(
    sf: SalesforceConnector, sobject: str, field: str, ids: Sequence[str], keep_id: str
) -> None:
    """Point ``field`` of every record ``ids`` at ``keep_id``; raise on any refusal."""
    for start in range(0, len(ids), _PER_CALL):
        records = [
            {"attributes": {"type": sobject}, "Id": record_id, field: keep_id}
            for record_id in ids[start : start + _PER_CALL]
        ]
        response = await send(
            sf.client,
            "PATCH",
            f"{sf.base}/composite/sobjects",
            dialect=SALESFORCE_ERRORS,
            action=f"move {sobject}",
            json={"allOrNone": False, "records": records},
        )
        items = response.json()
        if not isinstance(items, list) or len(items) != len(records):
            raise CrmUnavailable(f"salesforce: move {sobject} answered an unexpected body")
        failed = [i for i in items if not (isinstance(i, dict) and i.get("success"))]
        if failed:
            errors = failed[0].get("errors") if isinstance(failed[0], dict) else None
            first = errors[0] if isinstance(errors, list) and errors else {}
            message = f"{first.get('statusCode', '')}: {first.get('message', '')}"
            raise CrmRejected(
                f"salesforce: {len(failed)} {sobject} record(s) could not be moved to the "
                "kept Contact (rejected; see crm_error); nothing was merged in our maps, "
                "run the merge again once fixed",
                status_code=400,
                crm_error=message,
            )


async def merge_contacts(connector: CrmConnector, request: MergeRequest) -> CrmMergeResult:
    """Move the other Contact's Cases, Tasks and Opportunities to the kept Contact, then
    delete the other if wa-bridge created it (see the module docstring)."""
    sf = _salesforce(connector)
    pair = crm_ids("salesforce", request, "Contact")
    if isinstance(pair, CrmMergeResult):
        return pair
    keep, other = pair
    found = {(s, f): await _ids(sf, s, f, other) for s, f in RELATED}
    counts = ", ".join(f"{len(ids)} {s}" for (s, _), ids in found.items())
    ours = request.other_match == "created"
    verb = "would " if request.dry_run else ""
    lines = [f"salesforce: {verb}move {counts} from Contact {other} to Contact {keep}"]
    if not request.dry_run:
        for (sobject, field), ids in found.items():
            await _move(sf, sobject, field, ids, keep)
    if ours:
        if not request.dry_run:
            await _delete(sf, other)
        lines.append(
            f"salesforce: {verb}delete Contact {other} (created by wa-bridge; restorable "
            "from the Recycle Bin for 15 days)"
        )
    else:
        lines.append(
            f"salesforce: Contact {other} is the company's own record (adopted by "
            f"{request.other_match or 'lookup'}): kept; merge or delete it in Salesforce"
        )
    lines.append("salesforce: moved records stay on the kept Contact after an unmerge")
    return CrmMergeResult(tuple(lines), reversible=False)


async def _delete(sf: SalesforceConnector, contact_id: str) -> None:
    try:
        await send(
            sf.client,
            "DELETE",
            f"{sf.base}/sobjects/Contact/{contact_id}",
            dialect=SALESFORCE_ERRORS,
            action="delete merged Contact",
        )
    except CrmRejected as exc:
        if exc.status_code != 404:  # already deleted: a merge run again
            raise


async def unmerge_contacts(connector: CrmConnector, request: UnmergeRequest) -> tuple[str, ...]:
    """Nothing moves back in Salesforce; say what the admin may do."""
    return (
        "salesforce: Cases, Tasks and Opportunities stay on the kept Contact; a deleted "
        "Contact can be restored from the Recycle Bin, and the other contact's next message "
        "finds it again by its key (else creates a new Contact)",
    )


SALESFORCE_MERGER: Final = ContactMerger(merge=merge_contacts, unmerge=unmerge_contacts)
