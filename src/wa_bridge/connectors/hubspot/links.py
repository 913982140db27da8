"""HubSpot associations: ticket → contact, deal → contact and ticket, note → contact and
ticket, by stored ids.

A ticket or note is linked once, when it is new to the book (written for the first time,
or again after a rollback lost the book's entry), and again when a record it links to was
made anew in this call (a user deleted it); a link made inline when the record was created
(``WriteCall.linked``) is not made again. The ids come from the book or from this
call's writes, so linking needs no read; an id neither knows (a record this process never
wrote) is looked up by our key. A link HubSpot refuses because one end no longer exists
(``OBJECT_NOT_FOUND``: a user deleted it) has that record written again under our key,
then is retried once; any other refusal refuses the ticket's or note's operations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal

from wa_bridge.connectors import _records as shared

if TYPE_CHECKING:
    from wa_bridge.connectors.hubspot.connector import Group, HubSpotConnector

__all__ = ["DEFAULT_TYPE_IDS", "associate", "default_type"]

# HubSpot's own (HUBSPOT_DEFINED) default association type per pair of object types, for
# links made inline on create
DEFAULT_TYPE_IDS: Final[dict[tuple[str, str], int]] = {
    ("tickets", "contacts"): 16,
    ("notes", "contacts"): 202,
    ("notes", "tickets"): 228,
    ("communications", "contacts"): 81,
    ("communications", "tickets"): 83,
}

Pair = tuple["Group", str, "Group", str]  # source group, source key, target group, target key
_GONE: Final = "OBJECT_NOT_FOUND"
Call = shared.WriteCall["Group", str]


def _pairs(call: Call) -> list[Pair]:
    """The links this call must make."""
    out: list[Pair] = []
    for ticket in call.plan.records("tickets"):
        _add(call, out, "tickets", ticket.key, [("contacts", ticket.contact_key)])
    for deal in call.plan.records("deals"):
        targets: list[tuple[Group, str | None]] = [
            ("contacts", deal.contact_key),
            ("tickets", deal.case_key),
        ]
        _add(call, out, "deals", deal.key, targets)
    for note in call.plan.records("notes"):
        links: list[tuple[Group, str | None]] = [
            ("contacts", note.contact_key),
            ("tickets", note.case_key),
        ]
        _add(call, out, "notes", note.key, links)
    return out


def _add(
    call: Call, out: list[Pair], group: Group, key: str, targets: list[tuple[Group, str | None]]
) -> None:
    if (group, key) not in call.done:
        return
    is_new = not call.was_known(group, key)
    for target_group, target_key in targets:
        if target_key is None or (target_group, target_key) in call.refused:
            continue
        if (group, key, target_group, target_key) in call.linked:
            continue
        if is_new or (target_group, target_key) in call.forgotten:
            out.append((group, key, target_group, target_key))


def default_type(type_id: int) -> dict[str, Any]:
    """One inline association type of HubSpot's own."""
    return {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}


async def associate(connector: HubSpotConnector, call: Call) -> None:
    """Make this call's links (see the module docstring)."""
    pairs = _pairs(call)
    if not pairs:
        return
    await _resolve(connector, call, pairs)
    failed = await _post(connector, call, pairs)
    gone: dict[str, tuple[Group, str]] = {}
    retry: list[Pair] = []
    for pair, error in failed:
        missing = _missing_ids(error)
        ends = [(pair[0], pair[1]), (pair[2], pair[3])]
        lost = [end for end in ends if call.id_of(*end) in missing]
        if _category(error) == _GONE and lost:
            for end in lost:
                gone[f"{end[0]}:{end[1]}"] = end
            retry.append(pair)
        else:
            _refuse(call, pair, error)
    if not retry:
        return
    for group, key in gone.values():
        await connector.rewrite(call, group, key)
    remade = set(gone.values())  # what else links to the records made again: linked again
    retry += [p for p in _pairs(call) if (p[2], p[3]) in remade and p not in retry]
    for pair, error in await _post(connector, call, retry):
        _refuse(call, pair, error)


async def _resolve(connector: HubSpotConnector, call: Call, pairs: list[Pair]) -> None:
    """Look up, by our key, contacts whose ids neither the book nor this call holds (the
    worker writes every contact a batch names, so only a caller without one needs this).
    A ticket the book does not know was never written (a case of echoes only): no link."""
    unknown = sorted(
        {
            key
            for _, _, group, key in pairs
            if group == "contacts" and call.id_of(group, key) is None
        }
    )
    if unknown:
        found = await connector._lookup("contacts", unknown, ())
        for key, candidate in found.items():
            call.found("contacts", key, candidate.crm_id)


async def _post(
    connector: HubSpotConnector, call: Call, pairs: list[Pair]
) -> list[tuple[Pair, Any]]:
    """Associate ``pairs`` (skipping those with an unknown end); the refused ones."""
    by_path: dict[tuple[Group, Group], list[tuple[Pair, str, str]]] = {}
    for pair in pairs:
        source_id, target_id = call.id_of(pair[0], pair[1]), call.id_of(pair[2], pair[3])
        if source_id is not None and target_id is not None:
            by_path.setdefault((pair[0], pair[2]), []).append((pair, source_id, target_id))
    failed: list[tuple[Pair, Any]] = []
    for (source, target), items in by_path.items():
        path = f"{connector._object_type(source)}/{connector._object_type(target)}"
        for start in range(0, len(items), connector.max_batch):
            chunk = items[start : start + connector.max_batch]
            inputs = [{"from": {"id": a}, "to": {"id": b}} for _, a, b in chunk]
            data = await connector.post(
                f"{connector.associations}/{path}/batch/associate/default",
                f"associate {path.replace('/', ' to ')}",
                inputs,
            )
            failed += _failures(data, chunk)
    return failed


def _failures(data: dict[str, Any], chunk: list[tuple[Pair, str, str]]) -> list[tuple[Pair, Any]]:
    """The pairs of ``chunk`` a 207 answer refused, each with its error."""
    out: list[tuple[Pair, Any]] = []
    for error in data.get("errors") or []:
        if not isinstance(error, dict):
            continue
        ids = _missing_ids(error)
        hit = [item for item in chunk if ids & {item[1], item[2]}] or chunk[:1]
        out.extend((pair, error) for pair, _, _ in hit)
    return out


def _missing_ids(error: Any) -> set[str]:
    if not isinstance(error, dict):
        return set()
    context = error.get("context") or {}
    found = {str(i) for values in context.values() if isinstance(values, list) for i in values}
    return found


def _category(error: Any) -> str:
    return str(error.get("category", "")) if isinstance(error, dict) else ""


def _refuse(call: Call, pair: Pair, error: Any) -> None:
    what: Literal["contact", "ticket"] = "contact" if pair[2] == "contacts" else "ticket"
    call.refuse(pair[0], pair[1], shared.Refusal(400, error, f"not linked to its {what}"))
