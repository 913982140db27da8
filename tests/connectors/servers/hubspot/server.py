"""HubSpotServer: a HubSpot portal as /work/shared/fixtures/CRM.md describes its contract.

Both path styles are served (``/crm/v3/objects/…`` and ``/crm/objects/2026-03/…``; v4
associations as ``/crm/v4/…`` or ``/crm/associations/2026-03/…``), object type ids
(``0-1``…) in place of names. Objects: contacts, deals, tickets, communications, notes.

Requests that break the contract (schemas, limits of a batch or a search) are recorded
as violations and answered 400. Requests that are valid but meet the portal's state get
HubSpot's own answer: a property nobody created (``PROPERTY_DOESNT_EXIST``), a read-only
one (``READ_ONLY_VALUE``), a bad value, a missing pipeline stage, a unique value taken.

``strict_properties`` off (the default) is a portal that was set up: every ``wa_*``
property exists (``wa_contact_key``, ``wa_case_key``, ``wa_note_key``, ``wa_deal_key``
unique). On, it is a new portal: only HubSpot's own properties and created ones exist.

Test helpers: :meth:`seed`, :meth:`seed_company_crm`, :meth:`agent_edit`,
:meth:`delete`, :meth:`get`, :meth:`find`, :meth:`find_all`, :meth:`objects`,
:meth:`associations_of`, :meth:`add_property`, :meth:`add_group`, :meth:`add_pipeline`,
:meth:`set_limits`, :meth:`expire_tokens` and ``oauth`` (client id, secret, refresh
token). See ``access.py`` for auth and rate limits, ``store.py`` for records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .. import _routing
from .._people import COMPANY_CRM
from .._routing import Route
from ..base import ContractServer, Fault, RecordedRequest, Reply
from . import schema as S
from .access import Caller, HubSpotLimits, HubSpotOAuth
from .errors import (
    error_reply,
    hubspot_error,
    invalid_property,
    not_found,
    property_values_error,
    rate_limit_body,
)
from .search import search
from .store import Objects, Record, iso
from .values import value_error

_OBJ = r"/crm/(?:v3/objects|objects/2026-03)/(?P<type>[^/]+)"
_REC = r"/crm/(?:v4/objects|objects/2026-03)/(?P<type>[^/]+)/(?P<id>[^/]+)/associations"
_ASSOC = (
    r"/crm/(?:v4/associations|associations/2026-03|associations/v4)/(?P<type>[^/]+)/(?P<to>[^/]+)"
)
_PROPS = r"/crm/(?:v3/properties|properties/2026-03)/(?P<type>[^/]+)"
_PIPES = r"/crm/(?:v3/pipelines|pipelines/2026-03)/(?P<type>[^/]+)"

ROUTES = (
    Route("POST", "/oauth/v1/token", "oauth/v1/token", auth=True),
    Route("POST", _OBJ + "/batch/upsert", "objects/{type}/batch/upsert"),
    Route("POST", _OBJ + "/batch/read", "objects/{type}/batch/read"),
    Route("POST", _OBJ + "/batch/create", "objects/{type}/batch/create"),
    Route("POST", _OBJ + "/batch/update", "objects/{type}/batch/update"),
    Route("POST", _OBJ + "/batch/archive", "objects/{type}/batch/archive"),
    Route("POST", _OBJ + "/search", "objects/{type}/search"),
    Route("POST", _OBJ + "/merge", "objects/{type}/merge"),
    Route("POST", _OBJ, "objects/{type}"),
    Route("GET", _OBJ, "objects/{type}"),
    Route("GET", _OBJ + "/(?P<id>[^/]+)", "objects/{type}/:id"),
    Route("PATCH", _OBJ + "/(?P<id>[^/]+)", "objects/{type}/:id"),
    Route("DELETE", _OBJ + "/(?P<id>[^/]+)", "objects/{type}/:id"),
    Route("PUT", _REC + "/default/(?P<to>[^/]+)/(?P<to_id>[^/]+)", "v4 {type}/:id/default/{to}"),
    Route("PUT", _REC + "/(?P<to>[^/]+)/(?P<to_id>[^/]+)", "v4 {type}/:id/labelled/{to}"),
    Route("DELETE", _REC + "/(?P<to>[^/]+)/(?P<to_id>[^/]+)", "v4 {type}/:id/{to}"),
    Route("GET", _REC + "/(?P<to>[^/]+)", "v4 {type}/:id/{to}"),
    Route("POST", _ASSOC + "/batch/associate/default", "v4 {type}/{to}/batch/associate/default"),
    Route("POST", _ASSOC + "/batch/create", "v4 {type}/{to}/batch/create"),
    Route("POST", _ASSOC + "/batch/read", "v4 {type}/{to}/batch/read"),
    Route("POST", _ASSOC + "/batch/archive", "v4 {type}/{to}/batch/archive"),
    Route("GET", _ASSOC + "/labels", "v4 {type}/{to}/labels"),
    Route("GET", _PROPS + "/groups", "properties/{type}/groups"),
    Route("POST", _PROPS + "/groups", "properties/{type}/groups"),
    Route("GET", _PROPS + "/groups/(?P<name>[^/]+)", "properties/{type}/groups/:name"),
    Route("GET", _PROPS, "properties/{type}"),
    Route("POST", _PROPS, "properties/{type}"),
    Route("GET", _PROPS + "/(?P<name>[^/]+)", "properties/{type}/:name"),
    Route("GET", _PIPES, "pipelines/{type}"),
    Route("GET", _PIPES + "/(?P<pipeline>[^/]+)", "pipelines/{type}/:id"),
)
# Endpoints the 10-second window does not count (specs: x-hubspot-rate-limit-exemptions).
_EXEMPT = ("/batch/associate/default", "/batch/create", "/batch/read", "/batch/archive")
_BODY_SCHEMAS = {
    "objects/{type}/batch/upsert": S.BATCH_UPSERT,
    "objects/{type}/batch/read": S.BATCH_READ,
    "objects/{type}/batch/create": S.BATCH_CREATE,
    "objects/{type}/batch/update": S.BATCH_UPDATE,
    "objects/{type}/batch/archive": S.BATCH_IDS,
    "objects/{type}/search": S.SEARCH,
    "objects/{type}/merge": S.MERGE,
    "POST objects/{type}": S.CREATE,
    "PATCH objects/{type}/:id": S.UPDATE,
    "v4 {type}/:id/labelled/{to}": S.ASSOC_LABELLED_PUT,
    "v4 {type}/{to}/batch/associate/default": S.ASSOC_DEFAULT,
    "v4 {type}/{to}/batch/create": S.ASSOC_CREATE,
    "v4 {type}/{to}/batch/read": S.BATCH_IDS,
    "v4 {type}/{to}/batch/archive": S.ASSOC_DEFAULT,
    "POST properties/{type}": S.PROPERTY_CREATE,
    "POST properties/{type}/groups": S.GROUP_CREATE,
}


def _normalize(name: str, value: str) -> str:
    if name in ("type", "to"):
        return S.OBJECT_TYPES.get(value, value)
    return value


class HubSpotServer(ContractServer):
    vendor = "hubspot"

    def __init__(self) -> None:
        super().__init__()
        self.wall: Callable[[], float] = time.time
        self.store = Objects(self.records, lambda: self.wall())
        self.limits = HubSpotLimits(lambda: self.clock())
        self.oauth = HubSpotOAuth(lambda: self.clock())
        self.strict_properties = False
        self.pipelines = S.default_pipelines()

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.wall = time.time
            self.strict_properties = False
            self.pipelines = S.default_pipelines()
            self.limits.configure(190, 650_000, 4)
            self.oauth.reset()
            self.oauth.access_token_lifetime_s = 1800.0

    # === test helpers =================================================================
    def set_limits(
        self, *, ten_seconds: int = 190, daily: int = 650_000, search_per_second: int = 4
    ) -> None:
        """Set the portal's limits (and empty their counters)."""
        with self._lock:
            self.limits.configure(ten_seconds, daily, search_per_second)

    def expire_tokens(self) -> None:
        """Every OAuth access token issued so far expires now (the private-app token not)."""
        with self._lock:
            self.oauth.tokens.expire_all()

    def seed(self, object_type: str, properties: dict[str, str] | None = None, **more: str) -> str:
        """A record the portal already holds (no request, no checks); returns its id."""
        with self._lock:
            record = self.store.create(S.OBJECT_TYPES[object_type], {**(properties or {}), **more})
            return str(record["id"])

    def seed_company_crm(self) -> dict[str, str]:
        """The contacts of ``_people.COMPANY_CRM`` (phones as typed, one e-mail only, two
        sharing a phone), oldest first; returns label → id."""
        out = {}
        for person in COMPANY_CRM:
            props = {
                "firstname": person.first_name,
                "lastname": person.last_name,
                "email": person.email,
                "phone": person.phone,
                "mobilephone": person.mobile,
            }
            out[person.label] = self.seed("contacts", {k: v for k, v in props.items() if v})
        return out

    def agent_edit(self, object_type: str, object_id: str, **properties: str) -> Record:
        """Change properties as an agent in HubSpot's UI would (bumps lastmodifieddate)."""
        with self._lock:
            record = self.store.get(S.OBJECT_TYPES[object_type], object_id)
            if record is None:
                raise KeyError(f"no {object_type} {object_id}")
            self.store.write(S.OBJECT_TYPES[object_type], record, dict(properties))
            return record

    def delete(self, object_type: str, object_id: str) -> None:
        """Delete (archive) a record as a user would in HubSpot."""
        with self._lock:
            if self.store.archive(S.OBJECT_TYPES[object_type], object_id) is None:
                raise KeyError(f"no {object_type} {object_id}")

    def get(self, object_type: str, object_id: str) -> Record | None:
        """The live record ``object_id`` (a merged-away id gives its primary)."""
        return self.store.get(S.OBJECT_TYPES[object_type], object_id)

    def objects(self, object_type: str) -> list[Record]:
        """The live records of ``object_type``."""
        return self.store.all(S.OBJECT_TYPES[object_type])

    def find(self, object_type: str, id_property: str, key: str) -> Record | None:
        """The live record whose ``id_property`` is ``key`` (for test assertions)."""
        found = self.find_all(object_type, id_property, key)
        return found[0] if found else None

    def find_all(self, object_type: str, name: str, value: str) -> list[Record]:
        return self.store.by_property(S.OBJECT_TYPES[object_type], name, value)

    def associations_of(self, object_type: str, object_id: str, to_type: str) -> list[str]:
        """Ids of the ``to_type`` records linked to ``object_type:object_id``."""
        a, b = S.OBJECT_TYPES[object_type], S.OBJECT_TYPES[to_type]
        canonical = self.store.canonical_id(a, object_id)
        return sorted(i for i, _ in self.store.linked(a, canonical, b))

    def add_property(
        self,
        object_type: str,
        name: str,
        *,
        unique: bool = False,
        type: str = "string",
        field_type: str = "text",
        options: list[str] | None = None,
        group: str | None = None,
    ) -> None:
        """Define a custom property as a portal admin would (for test set-up)."""
        object_type = S.OBJECT_TYPES[object_type]
        self.collection(f"properties/{object_type}")[name] = {
            "name": name,
            "label": name,
            "type": type,
            "fieldType": field_type,
            "groupName": group or S.DEFAULT_GROUPS[object_type],
            "hasUniqueValue": unique,
            "options": [{"label": o, "value": o} for o in options or []],
        }

    def add_group(self, object_type: str, name: str) -> None:
        object_type = S.OBJECT_TYPES[object_type]
        self.collection(f"groups/{object_type}")[name] = {"name": name, "label": name}

    def add_pipeline(
        self, object_type: str, pipeline_id: str, stages: dict[str, str], label: str = ""
    ) -> None:
        """Add a pipeline (stage id → label) to ``deals`` or ``tickets``."""
        object_type = S.OBJECT_TYPES[object_type]
        self.pipelines[object_type][pipeline_id] = {"label": label or pipeline_id, "stages": stages}

    def property(self, object_type: str, name: str) -> dict[str, Any] | None:
        """The property ``name`` of ``object_type`` as HubSpot describes it, or None."""
        object_type = S.OBJECT_TYPES[object_type]
        created = self.collection(f"properties/{object_type}").get(name)
        if created is not None:
            return created
        standard = S.STANDARD_PROPERTIES[object_type].get(name)
        return standard.describe() if standard else None

    # === property registry ============================================================
    def definition(self, object_type: str, name: str) -> S.PropertyDef | None:
        """What the portal knows of a property (implicit ``wa_*`` ones unless strict)."""
        created = self.collection(f"properties/{object_type}").get(name)
        if created is not None:
            options = [o["value"] for o in created.get("options") or []]
            return S.PropertyDef(
                name,
                created.get("type", "string"),
                created.get("fieldType", "text"),
                created.get("groupName", ""),
                tuple(options) if created.get("type") == "enumeration" and options else None,
                unique=bool(created.get("hasUniqueValue")),
                hubspot_defined=False,
            )
        standard = S.STANDARD_PROPERTIES[object_type].get(name)
        if standard is not None:
            return standard
        if not self.strict_properties and name.startswith("wa_"):
            unique = name in S.IMPLICIT_UNIQUE[object_type]
            return S.PropertyDef(name, unique=unique, hubspot_defined=False)
        return None

    def _group_exists(self, object_type: str, name: str) -> bool:
        return name == S.DEFAULT_GROUPS[object_type] or name in self.collection(
            f"groups/{object_type}"
        )

    # === contract =====================================================================
    def route(self, request: RecordedRequest) -> None:
        _routing.match(ROUTES, request, _normalize)

    def check(self, request: RecordedRequest) -> list[str]:
        if not request.route_name:
            return [f"no such operation {request.method} {request.path}"]
        if request.auth_endpoint:
            return [] if request.form else ["the token request is not form-encoded"]
        for key in ("type", "to"):
            value = request.params.get(key)
            if value is not None and value not in S.STANDARD_PROPERTIES:
                return [f"unknown object type {value!r}"]
        name = request.route_name
        validator = _BODY_SCHEMAS.get(f"{request.method} {name}") or _BODY_SCHEMAS.get(name)
        if validator is None:
            return [] if request.body is None else ["this operation takes no body"]
        errors = S.schema_errors(validator, request.body)
        if errors:
            return errors
        if name == "objects/{type}/batch/upsert":
            return _duplicate_ids(request.body["inputs"])
        if name == "objects/{type}/search":
            return self._check_search(request.body)
        if name == "objects/{type}/merge" and request.params["type"] != "contacts":
            return ["merge is for contacts here"]
        return []

    def _check_search(self, body: dict[str, Any]) -> list[str]:
        groups = body.get("filterGroups") or []
        errors = []
        if sum(len(g["filters"]) for g in groups) > 25:
            errors.append("more than 25 filters in all filter groups")
        for g, group in enumerate(groups):
            for f, flt in enumerate(group["filters"]):
                op = flt["operator"]
                need = {
                    "IN": ("values",),
                    "NOT_IN": ("values",),
                    "BETWEEN": ("value", "highValue"),
                    "HAS_PROPERTY": (),
                    "NOT_HAS_PROPERTY": (),
                }.get(op, ("value",))
                for key in need:
                    if key not in flt:
                        errors.append(f"filterGroups/{g}/filters/{f}: {op} needs {key}")
        if int(body.get("after") or 0) + int(body.get("limit") or 10) > 10_000 + 200:
            errors.append("paging past 10,000 results")
        return errors

    def error_reply(self, status: int, message: str, *, field: str | None = None) -> Reply:
        if status == 429:
            return self.rate_limit_reply()
        return error_reply(status, message, field=field)

    def rate_limit_reply(self) -> Reply:
        headers = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(self.limits.ten_seconds),
            "X-HubSpot-RateLimit-Remaining": "0",
        }
        return Reply(429, rate_limit_body("TEN_SECONDLY_ROLLING"), headers)

    def fault_reply(self, fault: Fault) -> Reply:
        if fault.status == 400 and fault.body is None:
            body = hubspot_error(
                "Property values were not valid",
                "VALIDATION_ERROR",
                errors=[{"message": "scripted validation error", "in": "phone"}],
            )
            return Reply(400, body, dict(fault.headers))
        return super().fault_reply(fault)

    # --- access -----------------------------------------------------------------------
    def authenticate(self, request: RecordedRequest) -> Reply | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token == self.token:
            request.caller = "private_app"
            return None
        refused = self.oauth.authenticate(token)
        if refused is None:
            request.caller = "oauth"
        return refused

    def _caller(self, request: RecordedRequest) -> Caller:
        return "oauth" if request.caller == "oauth" else "private_app"

    def throttle(self, request: RecordedRequest) -> Reply | None:
        if request.auth_endpoint:
            return None
        is_search = request.path.endswith("/search")
        exempt = "associations" in request.path and request.path.endswith(_EXEMPT)
        return self.limits.admit(self._caller(request), search=is_search, exempt=exempt)

    def decorate(self, request: RecordedRequest, reply: Reply) -> None:
        if request.caller:
            is_search = request.path.endswith("/search")
            for key, value in self.limits.headers(self._caller(request), search=is_search).items():
                reply.headers.setdefault(key, value)

    # === handlers =====================================================================
    def handle(self, request: RecordedRequest) -> Reply:
        return _HANDLERS[(request.method, request.route_name)](self, request)

    # --- objects ----------------------------------------------------------------------
    def _project(self, object_type: str, record: Record, names: list[str] | None) -> dict[str, Any]:
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

    def _full(self, record: Record) -> dict[str, Any]:
        return {
            "id": str(record["id"]),
            "properties": dict(record.get("properties", {})),
            "createdAt": record.get("createdAt"),
            "updatedAt": record.get("updatedAt"),
            "archived": bool(record.get("archived")),
        }

    def _invalid(
        self, object_type: str, props: dict[str, str], record: Record | None
    ) -> list[dict[str, Any]]:
        """HubSpot's "Property values were not valid" items for writing ``props``."""
        items = []
        for name, value in props.items():
            prop = self.definition(object_type, name)
            if prop is None:
                items.append(
                    invalid_property(
                        name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
                    )
                )
            elif prop.read_only:
                message = f'"{name}" is a read only property; its value cannot be set.'
                items.append(invalid_property(name, "READ_ONLY_VALUE", message))
            else:
                bad = value_error(prop, value, name=name)
                if bad is not None:
                    items.append(invalid_property(name, *bad))
        items.extend(self._pipeline_errors(object_type, props, record))
        return items

    def _pipeline_errors(
        self, object_type: str, props: dict[str, str], record: Record | None
    ) -> list[dict[str, Any]]:
        names = S.PIPELINE_PROPERTIES.get(object_type)
        if names is None or not (names[0] in props or names[1] in props):
            return []
        pipe_name, stage_name = names
        current = (record or {}).get("properties", {})
        pipeline_id = (
            props.get(pipe_name) or current.get(pipe_name) or S.DEFAULT_PIPELINE[object_type]
        )
        pipeline = self.pipelines[object_type].get(pipeline_id)
        if pipeline is None:
            message = f"{pipeline_id} is not a valid pipeline id"
            return [invalid_property(pipe_name, "INVALID_OPTION", message)]
        stage = props.get(stage_name) or current.get(stage_name)
        if stage and stage not in pipeline["stages"]:
            message = f"{stage} is not a valid stage of pipeline {pipeline_id}"
            return [invalid_property(stage_name, "INVALID_OPTION", message)]
        return []

    def _conflict(
        self, object_type: str, props: dict[str, str], record: Record | None
    ) -> str | None:
        """The message of a unique value another record holds, else None."""
        for name, value in props.items():
            prop = self.definition(object_type, name)
            if prop is None or not prop.unique or value == "":
                continue
            for other in self.store.by_property(object_type, name, value):
                if other is not record:
                    if name == "email":
                        return f"Contact already exists. Existing ID: {other['id']}"
                    return (
                        f"A record with {name}={value} already exists. Existing ID: {other['id']}"
                    )
        return None

    def _missing(self, object_type: str, props: dict[str, str]) -> list[str]:
        return [p for p in S.REQUIRED_ON_CREATE.get(object_type, ()) if not props.get(p)]

    def _create_defaults(self, object_type: str, props: dict[str, str]) -> dict[str, str]:
        pipe = S.PIPELINE_PROPERTIES.get(object_type)
        if pipe is not None and not props.get(pipe[0]):
            return {pipe[0]: S.DEFAULT_PIPELINE[object_type], **props}
        return props

    def _link_inline(
        self, object_type: str, record: Record, associations: list[dict[str, Any]]
    ) -> str | None:
        """Inline ``associations`` of a create; the error message, or None when all fit."""
        for item in associations:
            to_id = str(item["to"]["id"])
            for kind in item["types"]:
                pair = self._pair_of(object_type, int(kind["associationTypeId"]))
                if pair is None:
                    return f"association type {kind['associationTypeId']} does not exist"
                target_type = pair[1]
                target = self.store.get(target_type, to_id)
                if target is None:
                    return f"no {target_type} with id {to_id} to associate"
                self.store.link(object_type, str(record["id"]), target_type, str(target["id"]))
        return None

    def _pair_of(self, object_type: str, type_id: int) -> tuple[str, str] | None:
        return next(
            (p for p, t in S.ASSOCIATION_TYPES.items() if t == type_id and p[0] == object_type),
            None,
        )

    def _h_create(self, request: RecordedRequest) -> Reply:
        object_type = request.params["type"]
        props = dict(request.body["properties"])
        items = self._invalid(object_type, props, None)
        if items:
            return Reply(400, property_values_error(items))
        missing = self._missing(object_type, props)
        if missing:
            return error_reply(400, f"Missing required properties for create: {', '.join(missing)}")
        conflict = self._conflict(object_type, props, None)
        if conflict:
            return error_reply(409, conflict)
        for item in request.body.get("associations") or []:
            for kind in item["types"]:
                pair = self._pair_of(object_type, int(kind["associationTypeId"]))
                if pair is None or self.store.get(pair[1], str(item["to"]["id"])) is None:
                    return error_reply(400, f"cannot associate with {item['to']['id']}")
        record = self.store.create(object_type, self._create_defaults(object_type, props))
        self._link_inline(object_type, record, request.body.get("associations") or [])
        return Reply(201, self._full(record))

    def _h_read(self, request: RecordedRequest) -> Reply:
        object_type = request.params["type"]
        record = self._by_path_id(object_type, request.params["id"], request.query)
        if record is None:
            return not_found(f"{object_type} {request.params['id']}")
        names = _names(request.query.get("properties"))
        body = self._project(object_type, record, names)
        for to in filter(None, (request.query.get("associations") or "").split(",")):
            to_type = S.OBJECT_TYPES.get(to)
            if to_type is None:
                continue
            linked = self.store.linked(object_type, str(record["id"]), to_type)
            body.setdefault("associations", {})[to] = {
                "results": [
                    {"id": i, "type": f"{object_type[:-1]}_to_{to_type[:-1]}"} for i, _ in linked
                ]
            }
        return Reply(200, body)

    def _by_path_id(self, object_type: str, value: str, query: dict[str, str]) -> Record | None:
        id_property = query.get("idProperty")
        if id_property:
            found = self.store.by_property(object_type, id_property, value)
            return found[0] if found else None
        return self.store.get(object_type, value)

    def _h_list(self, request: RecordedRequest) -> Reply:
        object_type = request.params["type"]
        limit = min(int(request.query.get("limit") or 10), 100)
        start = int(request.query.get("after") or 0)
        records = self.store.all(object_type)
        page = records[start : start + limit]
        names = _names(request.query.get("properties"))
        body: dict[str, Any] = {"results": [self._project(object_type, r, names) for r in page]}
        if start + limit < len(records):
            body["paging"] = {"next": {"after": str(start + limit)}}
        return Reply(200, body)

    def _h_update(self, request: RecordedRequest) -> Reply:
        object_type = request.params["type"]
        record = self._by_path_id(object_type, request.params["id"], request.query)
        if record is None:
            return not_found(f"{object_type} {request.params['id']}")
        props = dict(request.body["properties"])
        items = self._invalid(object_type, props, record)
        if items:
            return Reply(400, property_values_error(items))
        conflict = self._conflict(object_type, props, record)
        if conflict:
            return error_reply(409, conflict)
        self.store.write(object_type, record, props)
        return Reply(200, self._full(record))

    def _h_archive(self, request: RecordedRequest) -> Reply:
        self.store.archive(request.params["type"], request.params["id"])
        return Reply(204)

    def _h_batch_archive(self, request: RecordedRequest) -> Reply:
        for item in request.body["inputs"]:
            self.store.archive(request.params["type"], item["id"])
        return Reply(204)

    def _h_merge(self, request: RecordedRequest) -> Reply:
        object_type = request.params["type"]
        body = request.body
        primary = self.store.get(object_type, body["primaryObjectId"])
        other = self.store.get(object_type, body["objectIdToMerge"])
        if primary is None or other is None:
            missing = body["primaryObjectId"] if primary is None else body["objectIdToMerge"]
            return not_found(f"{object_type} {missing}")
        if primary is other:
            return error_reply(400, "An object cannot be merged with itself")
        return Reply(200, self._full(self.store.merge(object_type, primary, other)))

    # --- batches ----------------------------------------------------------------------
    def _h_batch_upsert(self, request: RecordedRequest) -> Reply:
        object_type = request.params["type"]
        inputs = request.body["inputs"]
        results, errors = [], []
        plans = []
        for item in inputs:
            found = self.store.by_property(object_type, item["idProperty"], item["id"])
            record = found[0] if found else None
            props = dict(item["properties"])
            if record is None:
                props = {item["idProperty"]: item["id"], **props}
            plans.append((item, record, props))
        invalid = [
            (item, bad)
            for item, record, props in plans
            if (bad := self._invalid(object_type, props, record))
        ]
        id_properties = {i["idProperty"] for i in inputs}
        also = [b for _, bad in invalid for b in bad if b["name"] not in id_properties]
        refused = self._bad_id_property(object_type, id_properties, also)
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
            if record is None:
                missing = self._missing(object_type, props)
                if missing:
                    errors.append(_missing_error(item["id"], missing))
                    continue
                record = self.store.create(object_type, self._create_defaults(object_type, props))
            else:
                self.store.write(object_type, record, props)
            results.append({**self._full(record), "new": new})
        return _batch_reply(results, errors, ok_status=200)

    def _bad_id_property(
        self, object_type: str, names: set[str], also: list[dict[str, Any]] | None = None
    ) -> Reply | None:
        """HubSpot's 400 for an ``idProperty`` that does not exist or is not unique
        (with ``also``: other bad property values of the same request)."""
        errors = []
        for name in sorted(names):
            prop = self.definition(object_type, name)
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

    def _h_batch_create(self, request: RecordedRequest) -> Reply:
        object_type = request.params["type"]
        inputs = request.body["inputs"]
        invalid = [
            (item, bad)
            for item in inputs
            if (bad := self._invalid(object_type, dict(item["properties"]), None))
        ]
        if invalid and not _multi_status(inputs):
            return Reply(400, property_values_error([b for _, bad in invalid for b in bad]))
        skipped = {id(item) for item, _ in invalid}
        results, errors = [], [_item_error(item, bad) for item, bad in invalid]
        for item in inputs:
            if id(item) in skipped:
                continue
            props = dict(item["properties"])
            missing = self._missing(object_type, props)
            conflict = self._conflict(object_type, props, None)
            if missing or conflict:
                message = conflict or f"Missing required properties: {', '.join(missing)}"
                error = hubspot_error(message, "CONFLICT" if conflict else "VALIDATION_ERROR")
                trace = item.get("objectWriteTraceId")
                errors.append({**error, "context": {"objectWriteTraceId": [trace]}})
                continue
            record = self.store.create(object_type, self._create_defaults(object_type, props))
            self._link_inline(object_type, record, item.get("associations") or [])
            result = self._full(record)
            if item.get("objectWriteTraceId"):
                result["objectWriteTraceId"] = item["objectWriteTraceId"]
            results.append(result)
        return _batch_reply(results, errors, ok_status=201)

    def _h_batch_update(self, request: RecordedRequest) -> Reply:
        object_type = request.params["type"]
        results, errors = [], []
        for item in request.body["inputs"]:
            query = {"idProperty": item["idProperty"]} if item.get("idProperty") else {}
            record = self._by_path_id(object_type, item["id"], query)
            if record is None:
                error = hubspot_error(f"Could not find object {item['id']}", "OBJECT_NOT_FOUND")
                errors.append({**error, "context": {"ids": [item["id"]]}})
                continue
            props = dict(item["properties"])
            bad = self._invalid(object_type, props, record)
            conflict = None if bad else self._conflict(object_type, props, record)
            if bad or conflict:
                if not _multi_status(request.body["inputs"]):
                    if bad:
                        return Reply(400, property_values_error(bad))
                    return error_reply(409, conflict or "")
                errors.append(
                    _item_error(item, bad) if bad else hubspot_error(conflict or "", "CONFLICT")
                )
                continue
            self.store.write(object_type, record, props)
            results.append(self._full(record))
        return _batch_reply(results, errors, ok_status=200)

    def _h_batch_read(self, request: RecordedRequest) -> Reply:
        object_type = request.params["type"]
        body = request.body
        id_property = body.get("idProperty")
        if id_property:
            refused = self._bad_id_property(object_type, {id_property})
            if refused is not None:
                return refused
        results, errors = [], []
        query = {"idProperty": id_property} if id_property else {}
        for item in body["inputs"]:
            record = self._by_path_id(object_type, item["id"], query)
            if record is None:
                error = hubspot_error(f"Could not find object {item['id']}", "OBJECT_NOT_FOUND")
                errors.append({**error, "context": {"ids": [item["id"]]}})
            else:
                results.append(self._project(object_type, record, list(body["properties"])))
        return _batch_reply(results, errors, ok_status=200)

    def _h_search(self, request: RecordedRequest) -> Reply:
        object_type = request.params["type"]
        body = request.body
        for group in body.get("filterGroups") or []:
            for flt in group["filters"]:
                if self.definition(object_type, flt["propertyName"]) is None:
                    name = flt["propertyName"]
                    return error_reply(
                        400, f"There was a problem with the request: {name} does not exist"
                    )

        def definition(name: str) -> S.PropertyDef | None:
            return self.definition(object_type, name)

        page, total, after = search(
            self.store.all(object_type),
            body,
            definition,
            searchable=S.DEFAULT_SEARCH_PROPERTIES[object_type] + ("phone", "mobilephone"),
        )
        names = list(body["properties"]) if body.get("properties") else None
        out: dict[str, Any] = {
            "total": total,
            "results": [self._project(object_type, r, names) for r in page],
        }
        if after is not None:
            out["paging"] = {"next": {"after": str(after)}}
        return Reply(200, out)

    # --- associations -----------------------------------------------------------------
    def _ends(self, request: RecordedRequest, a: str, b: str) -> tuple[Record, Record] | Reply:
        source, target = request.params["type"], request.params["to"]
        if (source, target) not in S.ASSOCIATION_TYPES:
            return error_reply(400, f"{source} cannot be associated with {target}")
        left, right = self.store.get(source, a), self.store.get(target, b)
        if left is None or right is None:
            return not_found(f"{source} {a}" if left is None else f"{target} {b}")
        return left, right

    def _h_assoc_default(self, request: RecordedRequest) -> Reply:
        ends = self._ends(request, request.params["id"], request.params["to_id"])
        if isinstance(ends, Reply):
            return ends
        source, target = request.params["type"], request.params["to"]
        self.store.link(source, str(ends[0]["id"]), target, str(ends[1]["id"]))
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

    def _h_assoc_labelled(self, request: RecordedRequest) -> Reply:
        ends = self._ends(request, request.params["id"], request.params["to_id"])
        if isinstance(ends, Reply):
            return ends
        source, target = request.params["type"], request.params["to"]
        for kind in request.body:
            if kind["associationTypeId"] != S.ASSOCIATION_TYPES[(source, target)]:
                return error_reply(
                    400, f"association type {kind['associationTypeId']} does not fit"
                )
        self.store.link(source, str(ends[0]["id"]), target, str(ends[1]["id"]))
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

    def _h_assoc_delete(self, request: RecordedRequest) -> Reply:
        source, target = request.params["type"], request.params["to"]
        a = self.store.canonical_id(source, request.params["id"])
        b = self.store.canonical_id(target, request.params["to_id"])
        self.store.unlink(source, a, target, b)
        return Reply(204)

    def _h_assoc_list(self, request: RecordedRequest) -> Reply:
        source, target = request.params["type"], request.params["to"]
        record = self.store.get(source, request.params["id"])
        if record is None:
            return not_found(f"{source} {request.params['id']}")
        return Reply(200, {"results": self._linked(source, str(record["id"]), target)})

    def _linked(self, source: str, object_id: str, target: str) -> list[dict[str, Any]]:
        return [
            {
                "toObjectId": int(i) if i.isdigit() else i,
                "associationTypes": [
                    {"category": "HUBSPOT_DEFINED", "typeId": t, "label": None} for t in types
                ],
            }
            for i, types in self.store.linked(source, object_id, target)
        ]

    def _h_assoc_batch_default(self, request: RecordedRequest) -> Reply:
        source, target = request.params["type"], request.params["to"]
        if (source, target) not in S.ASSOCIATION_TYPES:
            return error_reply(400, f"{source} cannot be associated with {target}")
        results, errors = [], []
        for item in request.body["inputs"]:
            left = self.store.get(source, item["from"]["id"])
            right = self.store.get(target, item["to"]["id"])
            if left is None or right is None:
                missing = item["from"]["id"] if left is None else item["to"]["id"]
                error = hubspot_error(f"No object with id {missing}", "OBJECT_NOT_FOUND")
                errors.append({**error, "context": {"ids": [missing]}})
                continue
            self.store.link(source, str(left["id"]), target, str(right["id"]))
            results.append({"from": {"id": str(left["id"])}, "to": {"id": str(right["id"])}})
        return _batch_reply(results, errors, ok_status=200)

    def _h_assoc_batch_create(self, request: RecordedRequest) -> Reply:
        source, target = request.params["type"], request.params["to"]
        default = S.ASSOCIATION_TYPES.get((source, target))
        results, errors = [], []
        for item in request.body["inputs"]:
            left = self.store.get(source, item["from"]["id"])
            right = self.store.get(target, item["to"]["id"])
            wrong = [
                t["associationTypeId"] for t in item["types"] if t["associationTypeId"] != default
            ]
            if left is None or right is None or wrong:
                message = f"association type {wrong[0]} does not fit" if wrong else "no such object"
                errors.append(hubspot_error(message, "VALIDATION_ERROR"))
                continue
            self.store.link(source, str(left["id"]), target, str(right["id"]))
            results.append(
                {
                    "fromObjectTypeId": S.TYPE_IDS[source],
                    "fromObjectId": left["id"],
                    "toObjectTypeId": S.TYPE_IDS[target],
                    "toObjectId": right["id"],
                    "labels": [],
                }
            )
        return _batch_reply(results, errors, ok_status=201)

    def _h_assoc_batch_read(self, request: RecordedRequest) -> Reply:
        source, target = request.params["type"], request.params["to"]
        results, errors = [], []
        for item in request.body["inputs"]:
            record = self.store.get(source, item["id"])
            if record is None:
                errors.append(hubspot_error(f"No {source} {item['id']}", "OBJECT_NOT_FOUND"))
                continue
            results.append(
                {"from": {"id": item["id"]}, "to": self._linked(source, str(record["id"]), target)}
            )
        return _batch_reply(results, errors, ok_status=200)

    def _h_assoc_batch_archive(self, request: RecordedRequest) -> Reply:
        source, target = request.params["type"], request.params["to"]
        for item in request.body["inputs"]:
            a = self.store.canonical_id(source, item["from"]["id"])
            b = self.store.canonical_id(target, item["to"]["id"])
            self.store.unlink(source, a, target, b)
        return Reply(204)

    def _h_labels(self, request: RecordedRequest) -> Reply:
        source, target = request.params["type"], request.params["to"]
        type_id = S.ASSOCIATION_TYPES.get((source, target))
        results = (
            []
            if type_id is None
            else [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}]
        )
        return Reply(200, {"results": results})

    # --- properties, groups, pipelines ------------------------------------------------
    def _h_properties(self, request: RecordedRequest) -> Reply:
        object_type = request.params["type"]
        standard = [p.describe() for p in S.STANDARD_PROPERTIES[object_type].values()]
        created = list(self.collection(f"properties/{object_type}").values())
        return Reply(200, {"results": standard + created})

    def _h_property(self, request: RecordedRequest) -> Reply:
        prop = self.property(request.params["type"], request.params["name"])
        return Reply(200, prop) if prop else not_found(f"property {request.params['name']}")

    def _h_property_create(self, request: RecordedRequest) -> Reply:
        object_type = request.params["type"]
        body = request.body
        if body["fieldType"] not in S.PROPERTY_TYPES[body["type"]]:
            message = f"fieldType {body['fieldType']!r} does not fit type {body['type']!r}"
            return error_reply(400, message, field="fieldType")
        if body.get("hasUniqueValue") and body["type"] not in ("string", "number"):
            return error_reply(400, "hasUniqueValue needs a string or number type")
        if not self._group_exists(object_type, body["groupName"]):
            return error_reply(
                400, f"property group {body['groupName']} does not exist", field="groupName"
            )
        if self.property(object_type, body["name"]) is not None:
            return error_reply(409, f"property {body['name']} already exists")
        stamp = iso(int(self.wall() * 1000))
        prop = {"hasUniqueValue": False, **body, "createdAt": stamp, "updatedAt": stamp}
        self.collection(f"properties/{object_type}")[body["name"]] = prop
        return Reply(201, prop)

    def _h_groups(self, request: RecordedRequest) -> Reply:
        object_type = request.params["type"]
        default = S.DEFAULT_GROUPS[object_type]
        groups = [{"name": default, "label": default, "displayOrder": -1, "archived": False}]
        groups += [
            {**g, "displayOrder": -1, "archived": False}
            for g in self.collection(f"groups/{object_type}").values()
        ]
        return Reply(200, {"results": groups})

    def _h_group(self, request: RecordedRequest) -> Reply:
        name = request.params["name"]
        if not self._group_exists(request.params["type"], name):
            return not_found(f"group {name}")
        return Reply(200, {"name": name, "label": name, "displayOrder": -1, "archived": False})

    def _h_group_create(self, request: RecordedRequest) -> Reply:
        object_type = request.params["type"]
        body = request.body
        if self._group_exists(object_type, body["name"]):
            return error_reply(409, f"group {body['name']} already exists")
        self.collection(f"groups/{object_type}")[body["name"]] = dict(body)
        return Reply(201, {**body, "displayOrder": body.get("displayOrder", -1), "archived": False})

    def _pipeline_json(self, pipeline_id: str, pipeline: dict[str, Any]) -> dict[str, Any]:
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

    def _h_pipelines(self, request: RecordedRequest) -> Reply:
        pipelines = self.pipelines.get(request.params["type"], {})
        return Reply(200, {"results": [self._pipeline_json(k, v) for k, v in pipelines.items()]})

    def _h_pipeline(self, request: RecordedRequest) -> Reply:
        pipeline_id = request.params["pipeline"]
        pipeline = self.pipelines.get(request.params["type"], {}).get(pipeline_id)
        if pipeline is None:
            return not_found(f"pipeline {pipeline_id}")
        return Reply(200, self._pipeline_json(pipeline_id, pipeline))

    def _h_token(self, request: RecordedRequest) -> Reply:
        return self.oauth.token(request.body or {})


_HANDLERS: dict[tuple[str, str], Callable[[HubSpotServer, RecordedRequest], Reply]] = {
    ("POST", "oauth/v1/token"): HubSpotServer._h_token,
    ("POST", "objects/{type}/batch/upsert"): HubSpotServer._h_batch_upsert,
    ("POST", "objects/{type}/batch/read"): HubSpotServer._h_batch_read,
    ("POST", "objects/{type}/batch/create"): HubSpotServer._h_batch_create,
    ("POST", "objects/{type}/batch/update"): HubSpotServer._h_batch_update,
    ("POST", "objects/{type}/batch/archive"): HubSpotServer._h_batch_archive,
    ("POST", "objects/{type}/search"): HubSpotServer._h_search,
    ("POST", "objects/{type}/merge"): HubSpotServer._h_merge,
    ("POST", "objects/{type}"): HubSpotServer._h_create,
    ("GET", "objects/{type}"): HubSpotServer._h_list,
    ("GET", "objects/{type}/:id"): HubSpotServer._h_read,
    ("PATCH", "objects/{type}/:id"): HubSpotServer._h_update,
    ("DELETE", "objects/{type}/:id"): HubSpotServer._h_archive,
    ("PUT", "v4 {type}/:id/default/{to}"): HubSpotServer._h_assoc_default,
    ("PUT", "v4 {type}/:id/labelled/{to}"): HubSpotServer._h_assoc_labelled,
    ("DELETE", "v4 {type}/:id/{to}"): HubSpotServer._h_assoc_delete,
    ("GET", "v4 {type}/:id/{to}"): HubSpotServer._h_assoc_list,
    ("POST", "v4 {type}/{to}/batch/associate/default"): HubSpotServer._h_assoc_batch_default,
    ("POST", "v4 {type}/{to}/batch/create"): HubSpotServer._h_assoc_batch_create,
    ("POST", "v4 {type}/{to}/batch/read"): HubSpotServer._h_assoc_batch_read,
    ("POST", "v4 {type}/{to}/batch/archive"): HubSpotServer._h_assoc_batch_archive,
    ("GET", "v4 {type}/{to}/labels"): HubSpotServer._h_labels,
    ("GET", "properties/{type}/groups"): HubSpotServer._h_groups,
    ("POST", "properties/{type}/groups"): HubSpotServer._h_group_create,
    ("GET", "properties/{type}/groups/:name"): HubSpotServer._h_group,
    ("GET", "properties/{type}"): HubSpotServer._h_properties,
    ("POST", "properties/{type}"): HubSpotServer._h_property_create,
    ("GET", "properties/{type}/:name"): HubSpotServer._h_property,
    ("GET", "pipelines/{type}"): HubSpotServer._h_pipelines,
    ("GET", "pipelines/{type}/:id"): HubSpotServer._h_pipeline,
}
assert {(r.method, r.name) for r in ROUTES} == set(_HANDLERS), "a route without a handler"


def _names(raw: str | None) -> list[str] | None:
    return None if raw is None else [n for n in raw.split(",") if n]


def _duplicate_ids(inputs: list[dict[str, Any]]) -> list[str]:
    seen: set[tuple[str, str]] = set()
    errors = []
    for i, item in enumerate(inputs):
        key = (item["idProperty"], item["id"])
        if key in seen:
            errors.append(f"inputs/{i}: duplicate id in one batch")
        seen.add(key)
    return errors


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


def _batch_reply(
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
