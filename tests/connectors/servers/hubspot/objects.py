"""HubSpot's object endpoints: create, read, list, update, archive, merge, the batch
operations and search, with the checks a portal makes on every write (properties that
exist and are writable, values of their type, pipeline stages, unique values, required
properties on create)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..base import RecordedRequest, Reply
from . import schema as S
from .errors import error_reply, hubspot_error, invalid_property, not_found, property_values_error
from .search import search
from .store import Record, iso
from .values import value_error

if TYPE_CHECKING:
    from .server import HubSpotServer


def project(
    server: HubSpotServer, object_type: str, record: Record, names: list[str] | None
) -> dict[str, Any]:
    props = record.get("properties", {})
    if names is None:
        names = list(S.DEFAULT_SEARCH_PROPERTIES[object_type])
    wanted = [*names, "hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate"]
    shown = {n: props.get(n) for n in dict.fromkeys(wanted) if n in names or n in props}
    return {
        "id": str(record["id"]),
        "properties": shown,
        "createdAt": record.get("createdAt"),
        "updatedAt": record.get("updatedAt"),
        "archived": bool(record.get("archived")),
    }


def full_json(server: HubSpotServer, record: Record) -> dict[str, Any]:
    return {
        "id": str(record["id"]),
        "properties": dict(record.get("properties", {})),
        "createdAt": record.get("createdAt"),
        "updatedAt": record.get("updatedAt"),
        "archived": bool(record.get("archived")),
    }


def invalid_items(
    server: HubSpotServer, object_type: str, props: dict[str, str], record: Record | None
) -> list[dict[str, Any]]:
    """HubSpot's "Property values were not valid" items for writing ``props``."""
    items = []
    for name, value in props.items():
        prop = server.definition(object_type, name)
        if prop is None:
            items.append(
                invalid_property(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
            )
        elif prop.read_only:
            message = f'"{name}" is a read only property; its value cannot be set.'
            items.append(invalid_property(name, "READ_ONLY_VALUE", message))
        else:
            bad = value_error(prop, value, name=name)
            if bad is not None:
                items.append(invalid_property(name, *bad))
    items.extend(_pipeline_errors(server, object_type, props, record))
    return items


def _pipeline_errors(
    server: HubSpotServer, object_type: str, props: dict[str, str], record: Record | None
) -> list[dict[str, Any]]:
    names = S.PIPELINE_PROPERTIES.get(object_type)
    if names is None or not (names[0] in props or names[1] in props):
        return []
    pipe_name, stage_name = names
    current = (record or {}).get("properties", {})
    pipeline_id = props.get(pipe_name) or current.get(pipe_name) or S.DEFAULT_PIPELINE[object_type]
    pipeline = server.pipelines[object_type].get(pipeline_id)
    if pipeline is None:
        message = f"{pipeline_id} is not a valid pipeline id"
        return [invalid_property(pipe_name, "INVALID_OPTION", message)]
    stage = props.get(stage_name) or current.get(stage_name)
    if stage and stage not in pipeline["stages"]:
        message = f"{stage} is not a valid stage of pipeline {pipeline_id}"
        return [invalid_property(stage_name, "INVALID_OPTION", message)]
    return []


def conflict_message(
    server: HubSpotServer, object_type: str, props: dict[str, str], record: Record | None
) -> str | None:
    """The message of a unique value another record holds, else None."""
    for name, value in props.items():
        prop = server.definition(object_type, name)
        if prop is None or not prop.unique or value == "":
            continue
        for other in server.store.by_property(object_type, name, value):
            if other is not record:
                if name == "email":
                    return f"Contact already exists. Existing ID: {other['id']}"
                return f"A record with {name}={value} already exists. Existing ID: {other['id']}"
    return None


def missing_required(server: HubSpotServer, object_type: str, props: dict[str, str]) -> list[str]:
    return [p for p in S.REQUIRED_ON_CREATE.get(object_type, ()) if not props.get(p)]


def with_create_defaults(
    server: HubSpotServer, object_type: str, props: dict[str, str]
) -> dict[str, str]:
    pipe = S.PIPELINE_PROPERTIES.get(object_type)
    if pipe is not None and not props.get(pipe[0]):
        return {pipe[0]: S.DEFAULT_PIPELINE[object_type], **props}
    return props


def link_inline(
    server: HubSpotServer, object_type: str, record: Record, associations: list[dict[str, Any]]
) -> None:
    """Make the inline ``associations`` of a create (checked by :func:`_unlinkable`)."""
    for item in associations:
        for kind in item["types"]:
            pair = pair_of(server, object_type, int(kind["associationTypeId"]))
            target = server.store.get(pair[1], str(item["to"]["id"])) if pair else None
            if pair is not None and target is not None:
                server.store.link(object_type, str(record["id"]), pair[1], str(target["id"]))


def _unlinkable(
    server: HubSpotServer, object_type: str, associations: list[dict[str, Any]]
) -> str | None:
    """Why inline ``associations`` cannot be made (an unknown type id or record), or None."""
    for item in associations:
        for kind in item["types"]:
            pair = pair_of(server, object_type, int(kind["associationTypeId"]))
            if pair is None:
                return f"association type {kind['associationTypeId']} does not fit {object_type}"
            if server.store.get(pair[1], str(item["to"]["id"])) is None:
                return f"cannot associate with {pair[1]} {item['to']['id']}: it does not exist"
    return None


def pair_of(server: HubSpotServer, object_type: str, type_id: int) -> tuple[str, str] | None:
    return next(
        (p for p, t in S.ASSOCIATION_TYPES.items() if t == type_id and p[0] == object_type),
        None,
    )


def create(server: HubSpotServer, request: RecordedRequest) -> Reply:
    object_type = request.params["type"]
    props = dict(request.body["properties"])
    items = invalid_items(server, object_type, props, None)
    if items:
        return Reply(400, property_values_error(items))
    missing = missing_required(server, object_type, props)
    if missing:
        return error_reply(400, f"Missing required properties for create: {', '.join(missing)}")
    conflict = conflict_message(server, object_type, props, None)
    if conflict:
        return error_reply(409, conflict)
    unlinkable = _unlinkable(server, object_type, request.body.get("associations") or [])
    if unlinkable:
        return error_reply(400, unlinkable)
    record = server.store.create(object_type, with_create_defaults(server, object_type, props))
    link_inline(server, object_type, record, request.body.get("associations") or [])
    return Reply(201, full_json(server, record))


def read(server: HubSpotServer, request: RecordedRequest) -> Reply:
    object_type = request.params["type"]
    record = by_path_id(server, object_type, request.params["id"], request.query)
    if record is None:
        return not_found(f"{object_type} {request.params['id']}")
    names = split_names(request.query.get("properties"))
    body = project(server, object_type, record, names)
    for to in filter(None, (request.query.get("associations") or "").split(",")):
        to_type = S.OBJECT_TYPES.get(to)
        if to_type is None:
            continue
        linked = server.store.linked(object_type, str(record["id"]), to_type)
        body.setdefault("associations", {})[to] = {
            "results": [
                {"id": i, "type": f"{object_type[:-1]}_to_{to_type[:-1]}"} for i, _ in linked
            ]
        }
    return Reply(200, body)


def by_path_id(
    server: HubSpotServer, object_type: str, value: str, query: dict[str, str]
) -> Record | None:
    id_property = query.get("idProperty")
    if id_property:
        found = server.store.by_property(object_type, id_property, value)
        return found[0] if found else None
    return server.store.get(object_type, value)


def list_objects(server: HubSpotServer, request: RecordedRequest) -> Reply:
    object_type = request.params["type"]
    limit = min(int(request.query.get("limit") or 10), 100)
    start = int(request.query.get("after") or 0)
    records = server.store.all(object_type)
    page = records[start : start + limit]
    names = split_names(request.query.get("properties"))
    body: dict[str, Any] = {"results": [project(server, object_type, r, names) for r in page]}
    if start + limit < len(records):
        body["paging"] = {"next": {"after": str(start + limit)}}
    return Reply(200, body)


def update(server: HubSpotServer, request: RecordedRequest) -> Reply:
    object_type = request.params["type"]
    record = by_path_id(server, object_type, request.params["id"], request.query)
    if record is None:
        return not_found(f"{object_type} {request.params['id']}")
    props = dict(request.body["properties"])
    items = invalid_items(server, object_type, props, record)
    if items:
        return Reply(400, property_values_error(items))
    conflict = conflict_message(server, object_type, props, record)
    if conflict:
        return error_reply(409, conflict)
    server.store.write(object_type, record, props)
    return Reply(200, full_json(server, record))


def archive(server: HubSpotServer, request: RecordedRequest) -> Reply:
    server.store.archive(request.params["type"], request.params["id"])
    return Reply(204)


def batch_archive(server: HubSpotServer, request: RecordedRequest) -> Reply:
    for item in request.body["inputs"]:
        server.store.archive(request.params["type"], item["id"])
    return Reply(204)


def merge(server: HubSpotServer, request: RecordedRequest) -> Reply:
    object_type = request.params["type"]
    body = request.body
    primary = server.store.get(object_type, body["primaryObjectId"])
    other = server.store.get(object_type, body["objectIdToMerge"])
    if primary is None or other is None:
        missing = body["primaryObjectId"] if primary is None else body["objectIdToMerge"]
        return not_found(f"{object_type} {missing}")
    if primary is other:
        return error_reply(400, "An object cannot be merged with itself")
    return Reply(200, full_json(server, server.store.merge(object_type, primary, other)))


def batch_upsert(server: HubSpotServer, request: RecordedRequest) -> Reply:
    object_type = request.params["type"]
    inputs = request.body["inputs"]
    results, errors = [], []
    plans = []
    for item in inputs:
        found = server.store.by_property(object_type, item["idProperty"], item["id"])
        record = found[0] if found else None
        props = dict(item["properties"])
        if record is None:
            props = {item["idProperty"]: item["id"], **props}
        plans.append((item, record, props))
    invalid = [
        (item, bad)
        for item, record, props in plans
        if (bad := invalid_items(server, object_type, props, record))
    ]
    id_properties = {i["idProperty"] for i in inputs}
    also = [b for _, bad in invalid for b in bad if b["name"] not in id_properties]
    refused = bad_id_property(server, object_type, id_properties, also)
    if refused is not None:
        return refused
    if invalid and not _multi_status(inputs):
        return Reply(400, property_values_error([b for _, bad in invalid for b in bad]))
    skipped = {id(item) for item, _ in invalid}
    errors += [_item_error(item, bad) for item, bad in invalid]
    for item, record, props in plans:
        if id(item) in skipped:
            continue
        new = record is None
        others = {k: v for k, v in props.items() if k != item["idProperty"]}
        conflict = conflict_message(server, object_type, others, record)
        if conflict:
            error = hubspot_error(conflict, "CONFLICT")
            errors.append({**error, "context": {"ids": [item["id"]]}, "id": item["id"]})
            continue
        if record is None:
            missing = missing_required(server, object_type, props)
            if missing:
                errors.append(_missing_error(item["id"], missing))
                continue
            record = server.store.create(
                object_type, with_create_defaults(server, object_type, props)
            )
        else:
            server.store.write(object_type, record, props)
        results.append({**full_json(server, record), "new": new})
    return batch_reply(results, errors, ok_status=200)


def bad_id_property(
    server: HubSpotServer,
    object_type: str,
    names: set[str],
    also: list[dict[str, Any]] | None = None,
) -> Reply | None:
    """HubSpot's 400 for an ``idProperty`` that does not exist or is not unique
    (with ``also``: other bad property values of the same request)."""
    errors = []
    for name in sorted(names):
        prop = server.definition(object_type, name)
        if prop is None:
            item = invalid_property(
                name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
            )
            errors.append(item)
        elif not prop.unique:
            message = f"idProperty {name} is not a unique property"
            errors.append(invalid_property(name, "INVALID_ID_PROPERTY", message))
    if not errors:
        return None
    return Reply(400, property_values_error(errors + (also or [])))


def batch_create(server: HubSpotServer, request: RecordedRequest) -> Reply:
    object_type = request.params["type"]
    inputs = request.body["inputs"]
    invalid = [
        (item, bad)
        for item in inputs
        if (bad := invalid_items(server, object_type, dict(item["properties"]), None))
    ]
    if invalid and not _multi_status(inputs):
        return Reply(400, property_values_error([b for _, bad in invalid for b in bad]))
    skipped = {id(item) for item, _ in invalid}
    results, errors = [], [_item_error(item, bad) for item, bad in invalid]
    for item in inputs:
        if id(item) in skipped:
            continue
        props = dict(item["properties"])
        missing = missing_required(server, object_type, props)
        conflict = conflict_message(server, object_type, props, None)
        unlinkable = _unlinkable(server, object_type, item.get("associations") or [])
        if missing or conflict or unlinkable:
            message = conflict or unlinkable or f"Missing required properties: {', '.join(missing)}"
            error = hubspot_error(message, "CONFLICT" if conflict else "VALIDATION_ERROR")
            trace = item.get("objectWriteTraceId")
            errors.append({**error, "context": {"objectWriteTraceId": [trace]}})
            continue
        record = server.store.create(object_type, with_create_defaults(server, object_type, props))
        link_inline(server, object_type, record, item.get("associations") or [])
        result = full_json(server, record)
        if item.get("objectWriteTraceId"):
            result["objectWriteTraceId"] = item["objectWriteTraceId"]
        results.append(result)
    return batch_reply(results, errors, ok_status=201)


def batch_update(server: HubSpotServer, request: RecordedRequest) -> Reply:
    """Checked whole first (a 400 or 409 writes nothing), then applied."""
    object_type = request.params["type"]
    inputs = request.body["inputs"]
    errors: list[dict[str, Any]] = []
    plans = []
    for item in inputs:
        query = {"idProperty": item["idProperty"]} if item.get("idProperty") else {}
        record = by_path_id(server, object_type, item["id"], query)
        if record is None:
            error = hubspot_error(f"Could not find object {item['id']}", "OBJECT_NOT_FOUND")
            errors.append({**error, "context": {"ids": [item["id"]]}})
            continue
        props = dict(item["properties"])
        bad = invalid_items(server, object_type, props, record)
        conflict = None if bad else conflict_message(server, object_type, props, record)
        if bad and not _multi_status(inputs):
            return Reply(400, property_values_error(bad))
        if conflict and not _multi_status(inputs):
            return error_reply(409, conflict)
        if bad or conflict:
            error = _item_error(item, bad) if bad else hubspot_error(conflict or "", "CONFLICT")
            errors.append(error)
            continue
        plans.append((record, props))
    results = []
    for record, props in plans:
        server.store.write(object_type, record, props)
        results.append(full_json(server, record))
    return batch_reply(results, errors, ok_status=200)


def batch_read(server: HubSpotServer, request: RecordedRequest) -> Reply:
    object_type = request.params["type"]
    body = request.body
    id_property = body.get("idProperty")
    if id_property:
        refused = bad_id_property(server, object_type, {id_property})
        if refused is not None:
            return refused
    results, errors = [], []
    query = {"idProperty": id_property} if id_property else {}
    for item in body["inputs"]:
        record = by_path_id(server, object_type, item["id"], query)
        if record is None:
            error = hubspot_error(f"Could not find object {item['id']}", "OBJECT_NOT_FOUND")
            errors.append({**error, "context": {"ids": [item["id"]]}})
        else:
            results.append(project(server, object_type, record, list(body["properties"])))
    return batch_reply(results, errors, ok_status=200)


def search_objects(server: HubSpotServer, request: RecordedRequest) -> Reply:
    object_type = request.params["type"]
    body = request.body
    for group in body.get("filterGroups") or []:
        for flt in group["filters"]:
            if server.definition(object_type, flt["propertyName"]) is None:
                name = flt["propertyName"]
                return error_reply(
                    400, f"There was a problem with the request: {name} does not exist"
                )

    def definition(name: str) -> S.PropertyDef | None:
        return server.definition(object_type, name)

    page, total, after = search(
        server.store.all(object_type),
        body,
        definition,
        searchable=S.DEFAULT_SEARCH_PROPERTIES[object_type] + ("phone", "mobilephone"),
    )
    names = list(body["properties"]) if body.get("properties") else None
    out: dict[str, Any] = {
        "total": total,
        "results": [project(server, object_type, r, names) for r in page],
    }
    if after is not None:
        out["paging"] = {"next": {"after": str(after)}}
    return Reply(200, out)


def split_names(raw: str | None) -> list[str] | None:
    return None if raw is None else [n for n in raw.split(",") if n]


def _multi_status(inputs: list[dict[str, Any]]) -> bool:
    """Multi-status per item (207) is on when every input has an objectWriteTraceId."""
    traces = [i.get("objectWriteTraceId") for i in inputs]
    return all(traces) and len(set(traces)) == len(traces)


def _item_error(item: dict[str, Any], bad: list[dict[str, Any]]) -> dict[str, Any]:
    body = property_values_error(bad)
    context: dict[str, list[str]] = {"ids": [item["id"]]} if "id" in item else {}
    if item.get("objectWriteTraceId"):
        context["objectWriteTraceId"] = [item["objectWriteTraceId"]]
    return {**body, "context": context}


def _missing_error(key: str, missing: list[str]) -> dict[str, Any]:
    message = f"Missing required properties for create: {', '.join(missing)}"
    error = hubspot_error(
        message, "VALIDATION_ERROR", errors=[{"message": message, "in": missing[0]}]
    )
    return {**error, "context": {"ids": [key]}, "id": key}


def batch_reply(
    results: list[dict[str, Any]], errors: list[dict[str, Any]], *, ok_status: int
) -> Reply:
    now = iso(int(time.time() * 1000))
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": now,
        "completedAt": now,
    }
    if errors:
        body.update(errors=errors, numErrors=len(errors))
    return Reply(207 if errors else ok_status, body)
