"""A portal's set-up endpoints: properties, property groups, pipelines, OAuth tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base import RecordedRequest, Reply
from . import schema as S
from .errors import error_reply, not_found
from .store import iso

if TYPE_CHECKING:
    from .server import HubSpotServer


def list_properties(server: HubSpotServer, request: RecordedRequest) -> Reply:
    object_type = request.params["type"]
    standard = [p.describe() for p in S.STANDARD_PROPERTIES[object_type].values()]
    created = list(server.collection(f"properties/{object_type}").values())
    return Reply(200, {"results": standard + created})


def read_property(server: HubSpotServer, request: RecordedRequest) -> Reply:
    prop = server.property(request.params["type"], request.params["name"])
    return Reply(200, prop) if prop else not_found(f"property {request.params['name']}")


def create_property(server: HubSpotServer, request: RecordedRequest) -> Reply:
    object_type = request.params["type"]
    body = request.body
    if body["fieldType"] not in S.PROPERTY_TYPES[body["type"]]:
        message = f"fieldType {body['fieldType']!r} does not fit type {body['type']!r}"
        return error_reply(400, message, field="fieldType")
    if body.get("hasUniqueValue") and body["type"] not in ("string", "number"):
        return error_reply(400, "hasUniqueValue needs a string or number type")
    if not server.group_exists(object_type, body["groupName"]):
        return error_reply(
            400, f"property group {body['groupName']} does not exist", field="groupName"
        )
    if server.property(object_type, body["name"]) is not None:
        return error_reply(409, f"property {body['name']} already exists")
    stamp = iso(int(server.wall() * 1000))
    prop = {"hasUniqueValue": False, **body, "createdAt": stamp, "updatedAt": stamp}
    server.collection(f"properties/{object_type}")[body["name"]] = prop
    return Reply(201, prop)


def list_groups(server: HubSpotServer, request: RecordedRequest) -> Reply:
    object_type = request.params["type"]
    default = S.DEFAULT_GROUPS[object_type]
    groups = [{"name": default, "label": default, "displayOrder": -1, "archived": False}]
    groups += [
        {**g, "displayOrder": -1, "archived": False}
        for g in server.collection(f"groups/{object_type}").values()
    ]
    return Reply(200, {"results": groups})


def read_group(server: HubSpotServer, request: RecordedRequest) -> Reply:
    name = request.params["name"]
    if not server.group_exists(request.params["type"], name):
        return not_found(f"group {name}")
    return Reply(200, {"name": name, "label": name, "displayOrder": -1, "archived": False})


def create_group(server: HubSpotServer, request: RecordedRequest) -> Reply:
    object_type = request.params["type"]
    body = request.body
    if server.group_exists(object_type, body["name"]):
        return error_reply(409, f"group {body['name']} already exists")
    server.collection(f"groups/{object_type}")[body["name"]] = dict(body)
    return Reply(201, {**body, "displayOrder": body.get("displayOrder", -1), "archived": False})


def _pipeline_json(
    server: HubSpotServer, pipeline_id: str, pipeline: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": pipeline_id,
        "label": pipeline["label"],
        "displayOrder": 0,
        "archived": False,
        "stages": [
            {"id": sid, "label": label, "displayOrder": i, "archived": False, "metadata": {}}
            for i, (sid, label) in enumerate(pipeline["stages"].items())
        ],
    }


def list_pipelines(server: HubSpotServer, request: RecordedRequest) -> Reply:
    pipelines = server.pipelines.get(request.params["type"], {})
    return Reply(200, {"results": [_pipeline_json(server, k, v) for k, v in pipelines.items()]})


def read_pipeline(server: HubSpotServer, request: RecordedRequest) -> Reply:
    pipeline_id = request.params["pipeline"]
    pipeline = server.pipelines.get(request.params["type"], {}).get(pipeline_id)
    if pipeline is None:
        return not_found(f"pipeline {pipeline_id}")
    return Reply(200, _pipeline_json(server, pipeline_id, pipeline))


def token(server: HubSpotServer, request: RecordedRequest) -> Reply:
    return server.oauth.token(request.body or {})
