"""Merging two HubSpot contacts: ``POST …/contacts/merge`` {primaryObjectId, objectIdToMerge}.

HubSpot keeps the primary's values, fills its empty ones from the other, moves every
association (tickets, notes, communications) to it and answers the merged record, whose
id may be a new one. The merge cannot be undone in HubSpot: ``wa-bridge identity unmerge``
gives our maps back, and the other contact's next message creates a new record.

One search first (both ids, ``hs_object_id IN``) checks what the portal holds: a merge
already done (the other id among the kept record's ``hs_merged_object_ids``: a retried
merge) or a record deleted meanwhile is not merged again.
"""

from __future__ import annotations

from typing import Any, Final

from wa_bridge.connectors.base import CrmConnector
from wa_bridge.connectors.hubspot.connector import HubSpotConnector
from wa_bridge.connectors.merging import ContactMerger, CrmMergeResult, MergeRequest, crm_ids
from wa_bridge.errors import ConfigError, MergeRefused

__all__ = ["HUBSPOT_MERGER", "merge_contacts"]

FINAL: Final = (
    "hubspot: HubSpot merges cannot be undone; `wa-bridge identity unmerge` gives our maps "
    "back only"
)


def _hubspot(connector: CrmConnector) -> HubSpotConnector:
    if not isinstance(connector, HubSpotConnector):
        raise ConfigError(f"the HubSpot merge needs the HubSpot connector, not {connector.name}")
    return connector


async def _live(hs: HubSpotConnector, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The portal's live contacts among ``ids``: id → properties."""
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_object_id", "operator": "IN", "values": ids}]}
        ],
        "properties": ["hs_object_id", "hs_merged_object_ids"],
        "limit": len(ids),
    }
    data = await hs.post_body(f"{hs.objects}/contacts/search", "read contacts to merge", body)
    out: dict[str, dict[str, Any]] = {}
    for result in data.get("results") or []:
        if isinstance(result, dict) and result.get("id") is not None:
            out[str(result["id"])] = result.get("properties") or {}
    return out


async def merge_contacts(connector: CrmConnector, request: MergeRequest) -> CrmMergeResult:
    """Merge the other contact's HubSpot record into the kept one's (see the module doc)."""
    hs = _hubspot(connector)
    ids = crm_ids("hubspot", request, "HubSpot record")
    if isinstance(ids, CrmMergeResult):
        return ids
    keep, other = ids
    live = await _live(hs, [keep, other])
    if keep not in live:
        raise MergeRefused(
            f"hubspot: the kept contact's record {keep} is not in the portal (deleted?); "
            "let its next message recreate it, then merge"
        )
    if other not in live:
        merged = str(live[keep].get("hs_merged_object_ids") or "").split(";")
        done = other in merged
        why = "already merged into it" if done else "no longer in the portal (deleted)"
        return CrmMergeResult(
            (f"hubspot: contact {other} is {why}: nothing to merge",),
            reversible=not done,
            fields_merged=done,
        )
    if request.dry_run:
        return CrmMergeResult(
            (f"hubspot: would merge contact {other} into contact {keep}", FINAL),
            reversible=False,
        )
    body = {"primaryObjectId": keep, "objectIdToMerge": other}
    data = await hs.post_body(f"{hs.objects}/contacts/merge", "merge contacts", body)
    merged_id = str(data.get("id") or keep)
    became = f" (now {merged_id})" if merged_id != keep else ""
    return CrmMergeResult(
        (
            f"hubspot: merged contact {other} into contact {keep}{became}; its tickets and "
            "notes moved with it",
            FINAL,
        ),
        reversible=False,
        keep_crm_id=merged_id,
        fields_merged=True,
    )


HUBSPOT_MERGER: Final = ContactMerger(merge=merge_contacts)
