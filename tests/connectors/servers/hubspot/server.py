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
token); the fault hooks of ``base``. Endpoints: ``objects.py``, ``links.py``
(associations), ``portal.py`` (properties, groups, pipelines, tokens); ``access.py``: auth
and rate limits; ``store.py``: records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .. import _routing
from .._people import COMPANY_CRM
from .._routing import Route
from ..base import ContractServer, Fault, RecordedRequest, Reply
from . import links, objects, portal
from . import schema as S
from .access import Caller, HubSpotLimits, HubSpotOAuth
from .errors import (
    error_reply,
    hubspot_error,
    rate_limit_body,
)
from .store import Objects, Record

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

    def expire_credentials(self) -> None:
        self.expire_tokens()

    def spend_daily_budget(self) -> None:
        """The private app's daily budget is used up (OAuth calls have none)."""
        with self._lock:
            self.limits.budget.used = self.limits.budget.limit

    def leave_daily_budget(self, requests: int) -> None:
        with self._lock:
            budget = self.limits.budget
            budget.used = max(0, budget.limit - requests)

    def renew_daily_budget(self) -> None:
        with self._lock:
            self.limits.budget.reset()
            self._wait_ran_out()

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

    def group_exists(self, object_type: str, name: str) -> bool:
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
        token = request.headers.get("authorization", "")
        return self.limits.admit(self._caller(request), token, search=is_search, exempt=exempt)

    def decorate(self, request: RecordedRequest, reply: Reply) -> None:
        if request.caller:
            is_search = request.path.endswith("/search")
            token = request.headers.get("authorization", "")
            headers = self.limits.headers(self._caller(request), token, search=is_search)
            for key, value in headers.items():
                reply.headers.setdefault(key, value)

    # === handlers =====================================================================
    def handle(self, request: RecordedRequest) -> Reply:
        with self.store.index.active():
            return _HANDLERS[(request.method, request.route_name)](self, request)

    # --- objects ----------------------------------------------------------------------

    # --- batches ----------------------------------------------------------------------

    # --- associations -----------------------------------------------------------------

    # --- properties, groups, pipelines ------------------------------------------------


_HANDLERS: dict[tuple[str, str], Callable[[HubSpotServer, RecordedRequest], Reply]] = {
    ("POST", "oauth/v1/token"): portal.token,
    ("POST", "objects/{type}/batch/upsert"): objects.batch_upsert,
    ("POST", "objects/{type}/batch/read"): objects.batch_read,
    ("POST", "objects/{type}/batch/create"): objects.batch_create,
    ("POST", "objects/{type}/batch/update"): objects.batch_update,
    ("POST", "objects/{type}/batch/archive"): objects.batch_archive,
    ("POST", "objects/{type}/search"): objects.search_objects,
    ("POST", "objects/{type}/merge"): objects.merge,
    ("POST", "objects/{type}"): objects.create,
    ("GET", "objects/{type}"): objects.list_objects,
    ("GET", "objects/{type}/:id"): objects.read,
    ("PATCH", "objects/{type}/:id"): objects.update,
    ("DELETE", "objects/{type}/:id"): objects.archive,
    ("PUT", "v4 {type}/:id/default/{to}"): links.associate_default,
    ("PUT", "v4 {type}/:id/labelled/{to}"): links.associate_labelled,
    ("DELETE", "v4 {type}/:id/{to}"): links.dissociate,
    ("GET", "v4 {type}/:id/{to}"): links.list_associations,
    ("POST", "v4 {type}/{to}/batch/associate/default"): links.batch_associate_default,
    ("POST", "v4 {type}/{to}/batch/create"): links.batch_associate,
    ("POST", "v4 {type}/{to}/batch/read"): links.batch_read_associations,
    ("POST", "v4 {type}/{to}/batch/archive"): links.batch_dissociate,
    ("GET", "v4 {type}/{to}/labels"): links.labels,
    ("GET", "properties/{type}/groups"): portal.list_groups,
    ("POST", "properties/{type}/groups"): portal.create_group,
    ("GET", "properties/{type}/groups/:name"): portal.read_group,
    ("GET", "properties/{type}"): portal.list_properties,
    ("POST", "properties/{type}"): portal.create_property,
    ("GET", "properties/{type}/:name"): portal.read_property,
    ("GET", "pipelines/{type}"): portal.list_pipelines,
    ("GET", "pipelines/{type}/:id"): portal.read_pipeline,
}
assert {(r.method, r.name) for r in ROUTES} == set(_HANDLERS), "a route without a handler"


def _duplicate_ids(inputs: list[dict[str, Any]]) -> list[str]:
    seen: set[tuple[str, str]] = set()
    errors = []
    for i, item in enumerate(inputs):
        key = (item["idProperty"], item["id"])
        if key in seen:
            errors.append(f"inputs/{i}: duplicate id in one batch")
        seen.add(key)
    return errors
