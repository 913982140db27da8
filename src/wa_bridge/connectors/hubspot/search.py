"""One CRM search for a batch's unknown contacts: the portal's records that may be theirs.

The filter groups of a search are ORed: one group per (property, up to 100 values) ``IN``
filter, for our key property, the calculated phone numbers
(``hs_searchable_calculated_phone_number`` / ``_mobile_number``: digits without the country
code for a number typed with ``+``, as typed otherwise; so every variant's national and
international digits, :func:`~wa_bridge.normalize.phone_forms.search_digits`) and the
e-mail, as the mapping's ``match:`` asks. HubSpot takes 5 groups (25 filters) per search:
a batch needs more searches only when its values fill more than 5 groups. Pages of 200
results are followed to the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from wa_bridge.connectors import _records as shared
from wa_bridge.connectors._matching import modified_at
from wa_bridge.normalize.phone_forms import search_digits

if TYPE_CHECKING:
    from wa_bridge.connectors.hubspot.connector import HubSpotConnector

__all__ = ["PHONE_PROPERTIES", "filter_groups", "find_contacts"]

MAX_GROUPS: Final = 5  # filter groups per search (HubSpot: 5 groups, 25 filters in all)
MAX_VALUES: Final = 100  # values of one IN filter
PAGE: Final = 200
PHONE_PROPERTIES: Final = (
    "hs_searchable_calculated_phone_number",
    "hs_searchable_calculated_mobile_number",
)
_READ: Final = ("phone", "mobilephone", "email", "lastmodifieddate")


def filter_groups(
    key_property: str,
    keys: Sequence[str],
    phones: Sequence[str],
    emails: Sequence[str],
) -> list[list[dict[str, Any]]]:
    """The filter groups of the batch's searches: at most :data:`MAX_GROUPS` per search,
    one ``IN`` filter (at most :data:`MAX_VALUES` values) per group."""
    wanted: list[tuple[str, Sequence[str]]] = [(key_property, keys)]
    wanted += [(name, phones) for name in PHONE_PROPERTIES]
    wanted.append(("email", emails))
    groups: list[dict[str, Any]] = []
    for name, values in wanted:
        for start in range(0, len(values), MAX_VALUES):
            part = list(values[start : start + MAX_VALUES])
            groups.append({"filters": [{"propertyName": name, "operator": "IN", "values": part}]})
    return [groups[i : i + MAX_GROUPS] for i in range(0, len(groups), MAX_GROUPS)]


async def find_contacts(
    connector: HubSpotConnector, records: Sequence[shared.Record[str]], names: Sequence[str]
) -> list[shared.Candidate]:
    """The portal's contacts found by our key, a phone form or an e-mail of ``records``."""
    order = connector.match_order
    phones: set[str] = set()
    emails: set[str] = set()
    for record in records:
        if "phone" in order and record.facts.phone_e164:
            phones.update(search_digits(record.facts.phone_e164))
        if "email" in order and record.facts.email:
            emails.add(record.facts.email.strip().lower())
    key_property = connector.id_properties["contacts"]
    properties = sorted({key_property, *_READ, *names})
    found: dict[str, shared.Candidate] = {}
    keys = sorted({r.key for r in records})
    for groups in filter_groups(key_property, keys, sorted(phones), sorted(emails)):
        after: str | None = None
        while True:
            body: dict[str, Any] = {"filterGroups": groups, "properties": properties, "limit": PAGE}
            if after is not None:
                body["after"] = after
            data = await connector.post_body(
                f"{connector.objects}/contacts/search", "search contacts", body
            )
            for result in data.get("results") or []:
                candidate = _candidate(result, key_property, names)
                found[candidate.crm_id] = candidate
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
    return list(found.values())


def _candidate(result: dict[str, Any], key_property: str, names: Sequence[str]) -> shared.Candidate:
    props = result.get("properties") or {}
    key = props.get(key_property)
    return shared.Candidate(
        crm_id=str(result["id"]),
        key=str(key) if key else None,
        phones=tuple(str(props[p]) for p in ("phone", "mobilephone") if props.get(p)),
        email=str(props["email"]) if props.get("email") else None,
        modified=modified_at(props.get("lastmodifieddate") or result.get("updatedAt")),
        values={n: props.get(n) for n in names},
    )
