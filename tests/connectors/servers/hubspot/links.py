"""HubSpot's v4 association endpoints (default and labelled, one by one and in batches)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base import RecordedRequest, Reply
from . import schema as S
from .errors import error_reply, hubspot_error, not_found
from .objects import batch_reply
from .store import Record

if TYPE_CHECKING:
    from .server import HubSpotServer


def _ends(
    server: HubSpotServer, request: RecordedRequest, a: str, b: str
) -> tuple[Record, Record] | Reply:
    source, target = request.params["type"], request.params["to"]
    if (source, target) not in S.ASSOCIATION_TYPES:
        return error_reply(400, f"{source} cannot be associated with {target}")
    left, right = server.store.get(source, a), server.store.get(target, b)
    if left is None or right is None:
        return not_found(f"{source} {a}" if left is None else f"{target} {b}")
    return left, right


def associate_default(server: HubSpotServer, request: RecordedRequest) -> Reply:
    ends = _ends(server, request, request.params["id"], request.params["to_id"])
    if isinstance(ends, Reply):
        return ends
    source, target = request.params["type"], request.params["to"]
    server.store.link(source, str(ends[0]["id"]), target, str(ends[1]["id"]))
    spec = {
        "associationCategory": "HUBSPOT_DEFINED",
        "associationTypeId": S.ASSOCIATION_TYPES[(source, target)],
    }
    result = {
        "associationSpec": spec,
        "from": {"id": ends[0]["id"]},
        "to": {"id": ends[1]["id"]},
    }
    return Reply(200, {"status": "COMPLETE", "results": [result]})


def associate_labelled(server: HubSpotServer, request: RecordedRequest) -> Reply:
    ends = _ends(server, request, request.params["id"], request.params["to_id"])
    if isinstance(ends, Reply):
        return ends
    source, target = request.params["type"], request.params["to"]
    for kind in request.body:
        if kind["associationTypeId"] != S.ASSOCIATION_TYPES[(source, target)]:
            return error_reply(400, f"association type {kind['associationTypeId']} does not fit")
    server.store.link(source, str(ends[0]["id"]), target, str(ends[1]["id"]))
    return Reply(
        201,
        {
            "fromObjectTypeId": S.TYPE_IDS[source],
            "fromObjectId": ends[0]["id"],
            "toObjectTypeId": S.TYPE_IDS[target],
            "toObjectId": ends[1]["id"],
            "labels": [],
        },
    )


def dissociate(server: HubSpotServer, request: RecordedRequest) -> Reply:
    source, target = request.params["type"], request.params["to"]
    a = server.store.canonical_id(source, request.params["id"])
    b = server.store.canonical_id(target, request.params["to_id"])
    server.store.unlink(source, a, target, b)
    return Reply(204)


def list_associations(server: HubSpotServer, request: RecordedRequest) -> Reply:
    source, target = request.params["type"], request.params["to"]
    record = server.store.get(source, request.params["id"])
    if record is None:
        return not_found(f"{source} {request.params['id']}")
    return Reply(200, {"results": linked_json(server, source, str(record["id"]), target)})


def linked_json(
    server: HubSpotServer, source: str, object_id: str, target: str
) -> list[dict[str, Any]]:
    return [
        {
            "toObjectId": int(i) if i.isdigit() else i,
            "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": t, "label": None} for t in types
            ],
        }
        for i, types in server.store.linked(source, object_id, target)
    ]


def batch_associate_default(server: HubSpotServer, request: RecordedRequest) -> Reply:
    source, target = request.params["type"], request.params["to"]
    if (source, target) not in S.ASSOCIATION_TYPES:
        return error_reply(400, f"{source} cannot be associated with {target}")
    results, errors = [], []
    for item in request.body["inputs"]:
        left = server.store.get(source, item["from"]["id"])
        right = server.store.get(target, item["to"]["id"])
        if left is None or right is None:
            missing = item["from"]["id"] if left is None else item["to"]["id"]
            error = hubspot_error(f"No object with id {missing}", "OBJECT_NOT_FOUND")
            errors.append({**error, "context": {"ids": [missing]}})
            continue
        server.store.link(source, str(left["id"]), target, str(right["id"]))
        results.append({"from": {"id": str(left["id"])}, "to": {"id": str(right["id"])}})
    return batch_reply(results, errors, ok_status=200)


def batch_associate(server: HubSpotServer, request: RecordedRequest) -> Reply:
    source, target = request.params["type"], request.params["to"]
    default = S.ASSOCIATION_TYPES.get((source, target))
    results, errors = [], []
    for item in request.body["inputs"]:
        left = server.store.get(source, item["from"]["id"])
        right = server.store.get(target, item["to"]["id"])
        wrong = [t["associationTypeId"] for t in item["types"] if t["associationTypeId"] != default]
        if left is None or right is None or wrong:
            message = f"association type {wrong[0]} does not fit" if wrong else "no such object"
            errors.append(hubspot_error(message, "VALIDATION_ERROR"))
            continue
        server.store.link(source, str(left["id"]), target, str(right["id"]))
        results.append(
            {
                "fromObjectTypeId": S.TYPE_IDS[source],
                "fromObjectId": left["id"],
                "toObjectTypeId": S.TYPE_IDS[target],
                "toObjectId": right["id"],
                "labels": [],
            }
        )
    return batch_reply(results, errors, ok_status=201)


def batch_read_associations(server: HubSpotServer, request: RecordedRequest) -> Reply:
    source, target = request.params["type"], request.params["to"]
    results, errors = [], []
    for item in request.body["inputs"]:
        record = server.store.get(source, item["id"])
        if record is None:
            errors.append(hubspot_error(f"No {source} {item['id']}", "OBJECT_NOT_FOUND"))
            continue
        results.append(
            {
                "from": {"id": item["id"]},
                "to": linked_json(server, source, str(record["id"]), target),
            }
        )
    return batch_reply(results, errors, ok_status=200)


def batch_dissociate(server: HubSpotServer, request: RecordedRequest) -> Reply:
    source, target = request.params["type"], request.params["to"]
    for item in request.body["inputs"]:
        a = server.store.canonical_id(source, item["from"]["id"])
        b = server.store.canonical_id(target, item["to"]["id"])
        server.store.unlink(source, a, target, b)
    return Reply(204)


def labels(server: HubSpotServer, request: RecordedRequest) -> Reply:
    source, target = request.params["type"], request.params["to"]
    type_id = S.ASSOCIATION_TYPES.get((source, target))
    results = (
        []
        if type_id is None
        else [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}]
    )
    return Reply(200, {"results": results})
