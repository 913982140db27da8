"""Merging two contacts in the generic REST CRM: the contract's optional ``mergeContacts``.

``POST /contacts/{keep_key}/merge`` with ``{"merge": other_key}``: the CRM moves the other
contact's cases, notes, outcomes and consents to the kept one and removes it (see
``contracts/rest-crm.openapi.yaml``). The contract has no unmerge, so the merge is final
in the CRM; a CRM that does not offer it answers 404 or 405 and the merge happens in our
maps only (the output says so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from wa_bridge.connectors.base import CrmConnector
from wa_bridge.connectors.http import send
from wa_bridge.connectors.merging import ContactMerger, CrmMergeResult, MergeRequest
from wa_bridge.errors import ConfigError, CrmRejected

if TYPE_CHECKING:
    from wa_bridge.connectors.rest import RestConnector

__all__ = ["REST_MERGER", "merge_contacts"]

_NOT_OFFERED: Final = frozenset({404, 405})


def _rest(connector: CrmConnector) -> RestConnector:
    from wa_bridge.connectors.rest import RestConnector  # rest.py builds its VENDOR with us

    if not isinstance(connector, RestConnector):
        raise ConfigError(f"the REST CRM merge needs its connector, not {connector.name}")
    return connector


async def merge_contacts(connector: CrmConnector, request: MergeRequest) -> CrmMergeResult:
    """Ask the CRM to merge the other contact into the kept one (see the module doc)."""
    from wa_bridge.connectors.rest import REST_ERRORS

    rest = _rest(connector)
    keep, other = request.keep_key, request.other_key
    if request.other_crm_id is None:
        return CrmMergeResult(
            ("rest: the other contact has no CRM record known to wa-bridge: nothing to merge",),
            reversible=True,
        )
    if request.dry_run:
        return CrmMergeResult(
            (f"rest: would ask the CRM to merge contact {other} into {keep} (final there)",),
            reversible=False,
        )
    try:
        response = await send(
            rest.client,
            "POST",
            f"/contacts/{quote(keep, safe='')}/merge",
            dialect=REST_ERRORS,
            action="merge contacts",
            json={"merge": other},
        )
    except CrmRejected as exc:
        if exc.status_code not in _NOT_OFFERED:
            raise
        return CrmMergeResult(
            (
                f"rest: the CRM answered {exc.status_code} to the merge (it offers none, or "
                "does not know the kept contact): merge the two records there by hand",
            ),
            reversible=True,
        )
    data = response.json() if response.content else {}
    merged = bool(data.get("merged")) if isinstance(data, dict) else False
    what = "merged" if merged else "had nothing to merge for"
    return CrmMergeResult(
        (f"rest: the CRM {what} contact {other} into {keep}; the contract has no unmerge",),
        reversible=not merged,
        fields_merged=merged,
    )


REST_MERGER: Final = ContactMerger(merge=merge_contacts)
