"""SalesforceServer: a Salesforce org's REST API as /work/shared/fixtures/CRM.md describes it.

Base ``/services/data/vXX.X``: sObject rows (``POST /sobjects/{T}``, ``GET|PATCH|DELETE
/sobjects/{T}/{Id}``, upsert ``PATCH /sobjects/{T}/{ExtField}/{value}``, ``GET
/sobjects/{T}/describe``), sObject Collections (``PATCH /composite/sobjects/{T}/{ExtField}``
upsert, ``POST|PATCH|DELETE /composite/sobjects``, ``GET /composite/sobjects/{T}``),
SOQL ``GET /query`` (see ``soql.py``), SOSL ``GET /search`` (see ``sosl.py``), ``GET
/limits``, and the Tooling API (``POST /tooling/sobjects/CustomField``, ``GET
/tooling/query``). Token endpoint: ``POST /services/oauth2/token`` (see ``oauth.py``).

A malformed body, SOQL or SOSL is a contract violation, answered 400 (``MALFORMED_QUERY``,
``MALFORMED_SEARCH``, ``JSON_PARSER_ERROR``). A valid request meeting the org's state
gets Salesforce's own answer (``INVALID_FIELD``, ``REQUIRED_FIELD_MISSING``,
``DUPLICATE_DEVELOPER_NAME``…); collections answer 200 with one result per record.
Every authenticated answer carries ``Sforce-Limit-Info: api-usage=N/M``; past the daily
allocation it is 403 ``REQUEST_LIMIT_EXCEEDED`` (no Retry-After).

Switches: ``strict_fields`` (off: every ``WA_*__c`` field exists and is writable, as in
an org set up for the connector; on: only created fields exist, and only once a
permission set assigned to the API user grants them), ``multi_currency``,
``customize_application``, ``manage_permission_sets``. Test helpers: :meth:`seed`,
:meth:`seed_company_crm`, :meth:`agent_edit`, :meth:`delete`, :meth:`get`,
:meth:`find`, :meth:`find_all`, :meth:`objects`, :meth:`add_field`, :meth:`grant`,
:meth:`set_api_limit`, :meth:`expire_sessions`; ``oauth`` holds the connected app.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from jsonschema import Draft202012Validator

from .. import _routing
from .._limits import DailyBudget
from .._people import COMPANY_CRM
from .._routing import Route
from ..base import ContractServer, Fault, RecordedRequest, Reply, path_key
from . import soql, sosl
from .oauth import SalesforceOAuth
from .records import Error, Record, Records, error, sf_time
from .schema import CUSTOM_NAME, CUSTOM_TYPES, ID_PREFIXES, SEARCH_GROUPS, Org

_B = r"/services/data/v(?P<version>\d+\.\d)"
ROUTES = (
    Route("POST", "/services/oauth2/token", "oauth2/token", auth=True),
    Route("GET", _B + "/limits/?", "limits"),
    Route("GET", _B + "/query/?", "query"),
    Route("GET", _B + "/search/?", "search"),
    Route("GET", _B + "/tooling/query/?", "tooling/query"),
    Route("POST", _B + "/tooling/sobjects/CustomField/?", "tooling/sobjects/CustomField"),
    Route("PATCH", _B + r"/composite/sobjects/(?P<type>\w+)/(?P<field>\w+)", "composite/{type}"),
    Route("GET", _B + r"/composite/sobjects/(?P<type>\w+)", "composite/{type}"),
    Route("POST", _B + "/composite/sobjects/?", "composite"),
    Route("PATCH", _B + "/composite/sobjects/?", "composite"),
    Route("DELETE", _B + "/composite/sobjects/?", "composite"),
    Route("GET", _B + r"/sobjects/(?P<type>\w+)/describe/?", "sobjects/{type}/describe"),
    Route("POST", _B + r"/sobjects/(?P<type>\w+)/?", "sobjects/{type}"),
    Route("GET", _B + r"/sobjects/(?P<type>\w+)/(?P<id>[^/]+)", "sobjects/{type}/:id"),
    Route("PATCH", _B + r"/sobjects/(?P<type>\w+)/(?P<id>[^/]+)", "sobjects/{type}/:id"),
    Route("DELETE", _B + r"/sobjects/(?P<type>\w+)/(?P<id>[^/]+)", "sobjects/{type}/:id"),
    Route(
        "PATCH",
        _B + r"/sobjects/(?P<type>\w+)/(?P<field>\w+)/(?P<value>[^/]+)",
        "sobjects/{type}/{field}/:value",
    ),
    Route(
        "GET",
        _B + r"/sobjects/(?P<type>\w+)/(?P<field>\w+)/(?P<value>[^/]+)",
        "sobjects/{type}/{field}/:value",
    ),
)
_URL_MAX = 16_384
_RECORD = {
    "type": "object",
    "required": ["attributes"],
    "properties": {
        "attributes": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"type": "string"}},
        }
    },
    "additionalProperties": {"type": ["string", "number", "boolean", "null", "object"]},
}


def _collection(record: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(
        {
            "type": "object",
            "required": ["records"],
            "additionalProperties": False,
            "properties": {
                "allOrNone": {"type": "boolean"},
                "records": {"type": "array", "minItems": 1, "maxItems": 200, "items": record},
            },
        }
    )


_UPSERT = _collection({**_RECORD, "not": {"required": ["Id"]}})
_CREATE = _collection({**_RECORD, "not": {"required": ["Id"]}})
_UPDATE = _collection({**_RECORD, "required": ["attributes", "Id"]})
_ROW = Draft202012Validator(
    {
        "type": "object",
        "additionalProperties": {"type": ["string", "number", "boolean", "null", "object"]},
    }
)
_CUSTOM_FIELD = Draft202012Validator(
    {
        "type": "object",
        "required": ["FullName", "Metadata"],
        "additionalProperties": False,
        "properties": {
            "FullName": {"type": "string", "minLength": 1},
            "Metadata": {
                "type": "object",
                "required": ["type", "label"],
                "properties": {
                    "type": {"type": "string"},
                    "label": {"type": "string", "minLength": 1},
                    "length": {"type": "integer"},
                    "precision": {"type": "integer"},
                    "scale": {"type": "integer"},
                    "visibleLines": {"type": "integer"},
                    "externalId": {"type": "boolean"},
                    "unique": {"type": "boolean"},
                    "caseSensitive": {"type": "boolean"},
                    "required": {"type": "boolean"},
                    "description": {"type": "string"},
                    "inlineHelpText": {"type": "string"},
                    "valueSet": {"type": "object"},
                },
            },
        },
    }
)
_TOOLING_FIELDS = ("Id", "DeveloperName", "TableEnumOrId", "NamespacePrefix", "FullName")
_TOOLING_FIELDS += ("CreatedDate", "LastModifiedDate")


def _sf(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"message": message, "errorCode": code}
    if fields:
        item["fields"] = fields
    return item


def _single(errors: list[Error], status: int = 400) -> Reply:
    """Collection-style errors (``statusCode``) as a single request's error array."""
    return Reply(status, [_sf(e["statusCode"], e["message"], e.get("fields")) for e in errors])


class SalesforceServer(ContractServer):
    vendor = "salesforce"

    def __init__(self) -> None:
        super().__init__()
        self.wall: Callable[[], float] = time.time
        self.org_id = "00D000000000001AAA"
        self.api_user = {
            "Id": "005000000000001AAA",
            "Username": "integration@wa-bridge.test",
            "Name": "wa-bridge Integration",
            "Email": "integration@wa-bridge.test",
            "IsActive": True,
        }
        self.org = Org(self.records, self.api_user_id)
        self.store = Records(self.records, self.org, lambda: self.wall(), self.api_user)
        self.oauth = SalesforceOAuth(
            lambda: self.clock(), lambda: self.wall(), self.org_id, self.api_user_id
        )
        self.customize_application = True
        self.manage_permission_sets = True
        self.budget = DailyBudget(100_000)

    @property
    def api_user_id(self) -> str:
        return str(self.api_user["Id"])

    # --- switches ---------------------------------------------------------------------
    @property
    def strict_fields(self) -> bool:
        return self.org.strict

    @strict_fields.setter
    def strict_fields(self, value: bool) -> None:
        self.org.strict = value

    @property
    def multi_currency(self) -> bool:
        return self.org.multi_currency

    @multi_currency.setter
    def multi_currency(self, value: bool) -> None:
        self.org.multi_currency = value

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.wall = time.time
            self.org.strict = False
            self.org.multi_currency = True
            self.customize_application = True
            self.manage_permission_sets = True
            self.budget = DailyBudget(100_000)
            self.oauth.reset()

    # === test helpers =================================================================
    def set_api_limit(self, daily: int, *, used: int = 0) -> None:
        """The org's daily API allocation, and how much of it is already used."""
        with self._lock:
            self.budget = DailyBudget(daily, used)

    @property
    def api_usage(self) -> int:
        return self.budget.used

    def expire_sessions(self) -> None:
        """Every session issued so far expires now (the static ``token`` does not)."""
        with self._lock:
            self.oauth.sessions.expire_all()

    def seed(self, sobject: str, **fields: Any) -> str:
        """A record the org already holds (no request, no checks); returns its Id."""
        with self._lock:
            return str(self.store.apply(sobject, dict(fields), None)["Id"])

    def seed_company_crm(self) -> dict[str, str]:
        """The contacts of ``_people.COMPANY_CRM`` (phones as typed, one known by e-mail
        only, two sharing a phone), oldest first; returns label → Id."""
        out = {}
        for person in COMPANY_CRM:
            fields = {
                "FirstName": person.first_name,
                "LastName": person.last_name or "(unknown)",
                "Email": person.email,
                "Phone": person.phone,
                "MobilePhone": person.mobile,
            }
            out[person.label] = self.seed("Contact", **{k: v for k, v in fields.items() if v})
        return out

    def agent_edit(self, sobject: str, record_id: str, **fields: Any) -> Record:
        """Change fields as a user in Salesforce would (bumps LastModifiedDate)."""
        with self._lock:
            record = self.store.get(sobject, record_id)
            if record is None:
                raise KeyError(f"no {sobject} {record_id}")
            self.store.touch(sobject, record, fields)
            return record

    def delete(self, sobject: str, record_id: str) -> None:
        """Delete a record as a user would (to the recycle bin)."""
        with self._lock:
            record = self.store.get(sobject, record_id)
            if record is None:
                raise KeyError(f"no {sobject} {record_id}")
            self.store.delete(sobject, record)

    def get(self, sobject: str, record_id: str) -> Record | None:
        return self.store.get(sobject, record_id)

    def objects(self, sobject: str) -> list[Record]:
        return self.store.all(sobject)

    def find(self, sobject: str, field: str, value: Any) -> Record | None:
        found = self.store.by_field(sobject, field, value)
        return found[0] if found else None

    def find_all(self, sobject: str, field: str, value: Any) -> list[Record]:
        return self.store.by_field(sobject, field, value)

    def add_field(
        self,
        sobject: str,
        name: str,
        *,
        type: str = "Text",
        length: int = 255,
        external_id: bool = False,
        unique: bool = False,
        readable: bool = True,
        editable: bool = True,
    ) -> str:
        """Create a custom field as an admin would, granted to the API user's profile
        (``readable``/``editable``); returns its CustomField Id."""
        with self._lock:
            metadata: dict[str, Any] = {"type": type, "label": name, "externalId": external_id}
            metadata["unique"] = unique
            if type == "Text":
                metadata["length"] = length
            field_id = self._store_custom_field(sobject, name, metadata)
            self.grant(sobject, name, read=readable, edit=editable)
            return field_id

    def grant(self, sobject: str, name: str, *, read: bool = True, edit: bool = True) -> None:
        """Field-level security on the API user's profile (as an admin would set it)."""
        key = f"{sobject}.{name}".lower()
        self.collection("_grants")[key] = {"read": read or edit, "edit": edit}

    # === contract =====================================================================
    def route(self, request: RecordedRequest) -> None:
        _routing.match(ROUTES, request)
        for key in ("value", "id"):
            if key in request.params:
                request.params[key] = path_key(request.params[key])

    def check(self, request: RecordedRequest) -> list[str]:
        name = request.route_name
        if not name:
            return [f"no such operation {request.method} {request.path}"]
        if request.auth_endpoint:
            return [] if request.form else ["the token request is not form-encoded"]
        if request.method in ("GET", "DELETE"):
            if request.body is not None:
                return [f"a {request.method} has no body"]
            if name in ("query", "tooling/query"):
                return self._check_query(request, sosl_search=False)
            if name == "search":
                return self._check_query(request, sosl_search=True)
            return []
        validator = {
            "composite/{type}": _UPSERT,
            "composite": _CREATE if request.method == "POST" else _UPDATE,
            "tooling/sobjects/CustomField": _CUSTOM_FIELD,
        }.get(name, _ROW)
        errors = [
            f"body{''.join(f'/{p}' for p in e.absolute_path)}: {e.message}"
            for e in validator.iter_errors(request.body)
        ]
        if errors:
            return errors
        if name == "composite/{type}":
            return self._check_upsert(request)
        if name == "sobjects/{type}/{field}/:value":
            field = request.params["field"]
            if any(k.lower() in ("id", field.lower()) for k in request.body):
                return [f"the body repeats Id or {field}: the value is in the path"]
        if name == "sobjects/{type}/:id" and "Id" in request.body:
            return ["the body repeats Id: it is in the path"]
        return []

    def _check_upsert(self, request: RecordedRequest) -> list[str]:
        sobject, ext = request.params["type"], request.params["field"]
        errors = []
        for i, record in enumerate(request.body["records"]):
            if record["attributes"]["type"] != sobject:
                errors.append(f"records/{i}: attributes.type is not {sobject}")
            if not record.get(ext):
                errors.append(f"records/{i}: no {ext}")
        return errors

    def _check_query(self, request: RecordedRequest, *, sosl_search: bool) -> list[str]:
        q = request.query.get("q", "")
        url_size = len(request.path) + len(urlencode({"q": q})) + 1
        if url_size > _URL_MAX:
            return [f"URI of {url_size} bytes is longer than {_URL_MAX}"]
        try:
            sosl.parse(q) if sosl_search else soql.parse(q)
        except (soql.SoqlError, sosl.SoslError) as exc:
            kind = "SOSL" if sosl_search else "SOQL"
            return [f"unsupported {kind}: {exc} in {q[:80]!r}"]
        return []

    def violation_reply(self, request: RecordedRequest) -> Reply:
        message = "; ".join(request.violations)
        code = {"query": "MALFORMED_QUERY", "tooling/query": "MALFORMED_QUERY"}.get(
            request.route_name, "MALFORMED_SEARCH" if request.route_name == "search" else ""
        )
        if not request.route_name:
            return Reply(404, [_sf("NOT_FOUND", "The requested resource does not exist")])
        if "URI of" in message:
            return Reply(414, [_sf("URI_TOO_LONG", message)])
        return Reply(400, [_sf(code or "JSON_PARSER_ERROR", message)])

    def error_reply(self, status: int, message: str, *, field: str | None = None) -> Reply:
        code = {
            400: "JSON_PARSER_ERROR",
            401: "INVALID_SESSION_ID",
            403: "REQUEST_LIMIT_EXCEEDED",
            404: "NOT_FOUND",
        }.get(status, "UNKNOWN_EXCEPTION")
        if status == 401:
            message = "Session expired or invalid"
        return Reply(status, [_sf(code, message, [field] if field else None)])

    def fault_reply(self, fault: Fault) -> Reply:
        if fault.status == 403 and fault.body is None:
            body = [_sf("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")]
            return Reply(403, body, dict(fault.headers))
        return super().fault_reply(fault)

    # --- access -----------------------------------------------------------------------
    def authenticate(self, request: RecordedRequest) -> Reply | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token == self.token or self.oauth.sessions.state(token) == "valid":
            request.caller = "session"
            return None
        return self.error_reply(401, "")

    def throttle(self, request: RecordedRequest) -> Reply | None:
        if request.auth_endpoint:
            return None
        if not self.budget.take():
            return Reply(403, [_sf("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")])
        return None

    def decorate(self, request: RecordedRequest, reply: Reply) -> None:
        if request.caller:
            reply.headers["Sforce-Limit-Info"] = f"api-usage={self.budget.used}/{self.budget.limit}"

    # === handlers =====================================================================
    def handle(self, request: RecordedRequest) -> Reply:
        return _HANDLERS[(request.method, request.route_name)](self, request)

    def _base(self, request: RecordedRequest) -> str:
        return f"/services/data/v{request.params['version']}"

    def _row(
        self, request: RecordedRequest, sobject: str, record: Record, names: list[str] | None
    ) -> dict[str, Any]:
        url = f"{self._base(request)}/sobjects/{sobject}/{record['Id']}"
        out: dict[str, Any] = {"attributes": {"type": sobject, "url": url}}
        if names is None:
            names = [f.name for f in self.org.visible_fields(sobject)]
        for name in names:
            definition = self.org.find_field(sobject, name)
            canonical = definition.name if definition else name
            out[canonical] = record.get(canonical)
        return out

    def _unknown_type(self, sobject: str) -> Reply | None:
        if self.org.exists(sobject):
            return None
        message = (
            f"The requested resource does not exist: sObject type '{sobject}' is not supported."
        )
        return Reply(404, [_sf("NOT_FOUND", message)])

    def _invisible(self, sobject: str, names: list[str]) -> str | None:
        return next((n for n in names if self.org.visible(sobject, n) is None), None)

    def _h_token(self, request: RecordedRequest) -> Reply:
        return self.oauth.token(request.body or {}, server_url=self.url)

    def _h_limits(self, request: RecordedRequest) -> Reply:
        daily = {"Max": self.budget.limit, "Remaining": self.budget.remaining}
        return Reply(200, {"DailyApiRequests": daily})

    # --- SOQL, SOSL -------------------------------------------------------------------
    def _h_query(self, request: RecordedRequest) -> Reply:
        query = soql.parse(request.query["q"])
        sobject = query.sobject = self.org.canonical(query.sobject)
        if not self.org.exists(sobject) or sobject == "CustomField":
            return Reply(
                400,
                [
                    _sf(
                        "INVALID_TYPE",
                        f"sObject type '{sobject}' is not supported. If you are attempting to "
                        "use a custom object, be sure to append the '__c' after the entity name.",
                    )
                ],
            )
        bad = self._invisible(sobject, query.referenced())
        if bad is not None:
            return Reply(
                400,
                [
                    _sf(
                        "INVALID_FIELD",
                        f"No such column '{bad}' on entity '{sobject}'. If you are attempting "
                        "to use a custom field, be sure to append the '__c' after the custom "
                        "field name.",
                    )
                ],
            )
        return self._answer_query(request, query, self.store.all(sobject))

    def _answer_query(
        self, request: RecordedRequest, query: soql.Query, rows: list[Record]
    ) -> Reply:
        sobject = query.sobject

        def get(row: Record, name: str) -> Any:
            definition = self.org.find_field(sobject, name)
            return row.get(definition.name if definition else name)

        if query.count:
            return Reply(
                200, {"totalSize": len(soql.run(query, rows, get)), "done": True, "records": []}
            )
        found = soql.run(query, rows, get)
        records = [self._row(request, sobject, r, query.fields) for r in found]
        return Reply(200, {"totalSize": len(records), "done": True, "records": records})

    def _h_tooling_query(self, request: RecordedRequest) -> Reply:
        query = soql.parse(request.query["q"])
        if query.sobject.lower() != "customfield":
            message = (
                f"sObject type '{query.sobject}' is not supported by this stand-in's Tooling API."
            )
            return Reply(400, [_sf("INVALID_TYPE", message)])
        bad = next((n for n in query.referenced() if n not in _TOOLING_FIELDS), None)
        if bad is not None:
            return Reply(
                400, [_sf("INVALID_FIELD", f"No such column '{bad}' on entity 'CustomField'.")]
            )
        rows = list(self.collection("CustomField").values())
        found = soql.run(query, rows, lambda row, name: row.get(name))
        base = self._base(request)
        records = [
            {
                "attributes": {
                    "type": "CustomField",
                    "url": f"{base}/tooling/sobjects/CustomField/{r['Id']}",
                },
                **{n: r.get(n) for n in query.fields},
            }
            for r in found
        ]
        if query.count:
            return Reply(
                200, {"size": len(found), "totalSize": len(found), "done": True, "records": []}
            )
        return Reply(
            200,
            {
                "size": len(records),
                "totalSize": len(records),
                "done": True,
                "queryLocator": None,
                "entityTypeName": "CustomField",
                "records": records,
            },
        )

    def _h_search(self, request: RecordedRequest) -> Reply:
        search = sosl.parse(request.query["q"])
        out: list[dict[str, Any]] = []
        kinds = SEARCH_GROUPS[search.group]
        for returning in search.returning:
            sobject = returning.query.sobject = self.org.canonical(returning.sobject)
            if not self.org.exists(sobject):
                return Reply(
                    400, [_sf("INVALID_TYPE", f"sObject type '{sobject}' is not supported.")]
                )
            bad = self._invisible(sobject, returning.query.referenced())
            if bad is not None:
                return Reply(
                    400, [_sf("INVALID_FIELD", f"No such column '{bad}' on entity '{sobject}'.")]
                )
            searched = [
                f for f in self.org.visible_fields(sobject) if f.type in kinds and f.name != "Id"
            ]
            rows = [r for r in self.store.all(sobject) if self._hit(r, searched, search)]

            def get(row: Record, name: str, sobject: str = sobject) -> Any:
                definition = self.org.find_field(sobject, name)
                return row.get(definition.name if definition else name)

            found = soql.run(returning.query, rows, get)
            out += [self._row(request, sobject, r, returning.query.fields) for r in found]
        if search.limit is not None:
            out = out[: search.limit]
        return Reply(200, {"searchRecords": out})

    def _hit(self, record: Record, fields: list[Any], search: sosl.Search) -> bool:
        for definition in fields:
            value = record.get(definition.name)
            if not value or not isinstance(value, str):
                continue
            for alternative in search.alternatives:
                if definition.type == "phone" and sosl.phone_matches(value, alternative):
                    return True
                if definition.type != "phone" and sosl.text_matches(value, alternative):
                    return True
        return False

    # --- one record -------------------------------------------------------------------
    def _h_describe(self, request: RecordedRequest) -> Reply:
        sobject = request.params["type"]
        unknown = self._unknown_type(sobject)
        if unknown is not None:
            return unknown
        fields = [f.describe() for f in self.org.visible_fields(sobject)]
        body = {
            "name": sobject,
            "label": sobject,
            "keyPrefix": ID_PREFIXES.get(sobject),
            "custom": False,
            "createable": True,
            "updateable": True,
            "queryable": True,
            "searchable": True,
            "fields": fields,
        }
        return Reply(200, body)

    def _setup_refusal(self, sobject: str) -> Reply | None:
        setup = ("PermissionSet", "FieldPermissions", "PermissionSetAssignment")
        if sobject in setup and not self.manage_permission_sets:
            message = "insufficient access rights: the user cannot manage permission sets"
            return Reply(403, [_sf("INSUFFICIENT_ACCESS", message)])
        if sobject == "User":
            return Reply(400, [_sf("INVALID_TYPE", "Users cannot be created through this API")])
        return None

    def _create(self, sobject: str, fields: dict[str, Any]) -> tuple[Record | None, list[Error]]:
        changes, errors = self.store.prepare(sobject, fields, None)
        errors = errors or self._setup_errors(sobject, changes)
        if errors:
            return None, errors
        return self.store.apply(sobject, changes, None), []

    def _setup_errors(self, sobject: str, changes: dict[str, Any]) -> list[Error]:
        """The rules of the permission objects (a grant names a real custom field…)."""
        if sobject == "FieldPermissions":
            target = str(changes.get("Field", ""))
            owner, _, name = target.partition(".")
            if owner != changes.get("SobjectType") or name not in self.org.custom_fields(owner):
                return [error("INVALID_FIELD", f"Field: bad value: {target}", ["Field"])]
            if changes.get("PermissionsEdit") and not changes.get("PermissionsRead"):
                message = "Permission Read is required when Permission Edit is enabled"
                return [error("FIELD_INTEGRITY_EXCEPTION", message, ["PermissionsRead"])]
            for other in self.store.all("FieldPermissions"):
                if (
                    other["ParentId"] == changes["ParentId"]
                    and other["Field"].lower() == target.lower()
                ):
                    return [error("DUPLICATE_VALUE", f"duplicate value found: {target}")]
        if sobject == "PermissionSetAssignment":
            for other in self.store.all("PermissionSetAssignment"):
                if (other["PermissionSetId"], other["AssigneeId"]) == (
                    changes["PermissionSetId"],
                    changes["AssigneeId"],
                ):
                    return [error("DUPLICATE_VALUE", "Duplicate PermissionSetAssignment")]
        if sobject == "PermissionSet" and not re.fullmatch(
            r"[A-Za-z](?:[A-Za-z0-9]|_(?!_))*", str(changes.get("Name", ""))
        ):
            return [error("FIELD_INTEGRITY_EXCEPTION", "Name: bad API name", ["Name"])]
        return []

    def _h_create(self, request: RecordedRequest) -> Reply:
        sobject = request.params["type"]
        refused = self._unknown_type(sobject) or self._setup_refusal(sobject)
        if refused is not None:
            return refused
        record, errors = self._create(sobject, request.body)
        if record is None:
            return _single(errors)
        return Reply(201, {"id": record["Id"], "success": True, "errors": []})

    def _find_row(self, sobject: str, record_id: str) -> Record | Reply:
        record = self.store.get(sobject, record_id)
        if record is not None:
            return record
        if self.store.deleted(sobject, record_id) is not None:
            return Reply(404, [_sf("ENTITY_IS_DELETED", "entity is deleted")])
        return Reply(404, [_sf("NOT_FOUND", "The requested resource does not exist")])

    def _h_read(self, request: RecordedRequest) -> Reply:
        sobject = request.params["type"]
        unknown = self._unknown_type(sobject)
        if unknown is not None:
            return unknown
        found = self._find_row(sobject, request.params["id"])
        if isinstance(found, Reply):
            return found
        names = [n for n in request.query.get("fields", "").split(",") if n] or None
        if names and (bad := self._invisible(sobject, names)) is not None:
            return Reply(
                400, [_sf("INVALID_FIELD", f"No such column '{bad}' on entity '{sobject}'")]
            )
        return Reply(200, self._row(request, sobject, found, names))

    def _h_update(self, request: RecordedRequest) -> Reply:
        sobject = request.params["type"]
        unknown = self._unknown_type(sobject)
        if unknown is not None:
            return unknown
        found = self._find_row(sobject, request.params["id"])
        if isinstance(found, Reply):
            return found
        changes, errors = self.store.prepare(sobject, request.body, found)
        if errors:
            return _single(errors)
        self.store.apply(sobject, changes, found)
        return Reply(204)

    def _h_delete(self, request: RecordedRequest) -> Reply:
        sobject = request.params["type"]
        found = self._find_row(sobject, request.params["id"])
        if isinstance(found, Reply):
            return found
        self.store.delete(sobject, found)
        return Reply(204)

    def _external(self, sobject: str, field: str) -> Reply | None:
        definition = self.org.visible(sobject, field)
        if definition is None or not definition.external_id:
            message = f"Provided external ID field does not exist or is not accessible: {field}"
            return Reply(404, [_sf("NOT_FOUND", message)])
        return None

    def _h_upsert_one(self, request: RecordedRequest) -> Reply:
        sobject, field, value = (request.params[k] for k in ("type", "field", "value"))
        refused = self._unknown_type(sobject) or self._external(sobject, field)
        if refused is not None:
            return refused
        found = self.store.by_field(sobject, field, value)
        if len(found) > 1:
            base = self._base(request)
            return Reply(300, [f"{base}/sobjects/{sobject}/{r['Id']}" for r in found])
        canonical = self.org.find_field(sobject, field)
        assert canonical is not None
        if not found:
            if request.query.get("updateOnly") == "true":
                return Reply(404, [_sf("NOT_FOUND", "The requested resource does not exist")])
            record, errors = self._create(sobject, {**request.body, canonical.name: value})
            if record is None:
                return _single(errors)
            return Reply(201, {"id": record["Id"], "success": True, "errors": [], "created": True})
        changes, errors = self.store.prepare(sobject, request.body, found[0])
        if errors:
            return _single(errors)
        self.store.apply(sobject, changes, found[0])
        if float(request.params["version"]) < 46.0:
            return Reply(204)
        return Reply(200, {"id": found[0]["Id"], "success": True, "errors": [], "created": False})

    def _h_read_by_external(self, request: RecordedRequest) -> Reply:
        sobject, field, value = (request.params[k] for k in ("type", "field", "value"))
        refused = self._unknown_type(sobject) or self._external(sobject, field)
        if refused is not None:
            return refused
        found = self.store.by_field(sobject, field, value)
        if not found:
            return Reply(404, [_sf("NOT_FOUND", "The requested resource does not exist")])
        if len(found) > 1:
            base = self._base(request)
            return Reply(300, [f"{base}/sobjects/{sobject}/{r['Id']}" for r in found])
        return Reply(200, self._row(request, sobject, found[0], None))

    # --- collections ------------------------------------------------------------------
    def _all_or_none(
        self, plans: list[tuple[Any, list[Error]]], all_or_none: bool
    ) -> tuple[bool, list[tuple[Any, list[Error]]]]:
        failed = any(errors for _, errors in plans)
        if not (failed and all_or_none):
            return True, plans
        rolled = error(
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "Record rolled back because not all records were valid and the request was "
            "using AllOrNone header",
        )
        return False, [(p, errors or [rolled]) for p, errors in plans]

    def _h_upsert_many(self, request: RecordedRequest) -> Reply:
        sobject, field = request.params["type"], request.params["field"]
        unknown = self._unknown_type(sobject)
        if unknown is not None:
            return unknown
        refused = self._external(sobject, field)
        if refused is not None:
            return Reply(400, [_sf("INVALID_FIELD", refused.body[0]["message"])])
        plans: list[tuple[Any, list[Error]]] = []
        for record in request.body["records"]:
            fields = {k: v for k, v in record.items() if k != "attributes"}
            found = self.store.by_field(sobject, field, record[field])
            if len(found) > 1:
                ids = ", ".join(r["Id"] for r in found)
                message = f"{field}: more than one record found for external id field: [{ids}]"
                plans.append((None, [error("DUPLICATE_EXTERNAL_ID", message, [field])]))
                continue
            target = found[0] if found else None
            changes, errors = self.store.prepare(sobject, fields, target)
            if target is None and not errors:
                errors = self._setup_errors(sobject, changes)
            plans.append(((target, changes), errors))
        apply, plans = self._all_or_none(plans, bool(request.body.get("allOrNone")))
        results: list[dict[str, Any]] = []
        for plan, errors in plans:
            if errors or not apply:
                results.append({"success": False, "errors": errors})
                continue
            target, changes = plan
            stored = self.store.apply(sobject, changes, target)
            results.append(
                {"id": stored["Id"], "success": True, "errors": [], "created": target is None}
            )
        return Reply(200, results)

    def _h_create_many(self, request: RecordedRequest) -> Reply:
        plans: list[tuple[Any, list[Error]]] = []
        for record in request.body["records"]:
            sobject = record["attributes"]["type"]
            if not self.org.exists(sobject) or self._setup_refusal(sobject) is not None:
                plans.append(
                    (None, [error("INVALID_TYPE", f"sObject type {sobject} cannot be created")])
                )
                continue
            fields = {k: v for k, v in record.items() if k != "attributes"}
            changes, errors = self.store.prepare(sobject, fields, None)
            errors = errors or self._setup_errors(sobject, changes)
            plans.append(((sobject, changes), errors))
        apply, plans = self._all_or_none(plans, bool(request.body.get("allOrNone")))
        results: list[dict[str, Any]] = []
        for plan, errors in plans:
            if errors or not apply:
                results.append({"id": None, "success": False, "errors": errors})
                continue
            stored = self.store.apply(plan[0], plan[1], None)
            results.append({"id": stored["Id"], "success": True, "errors": []})
        return Reply(200, results)

    def _h_update_many(self, request: RecordedRequest) -> Reply:
        plans: list[tuple[Any, list[Error]]] = []
        for record in request.body["records"]:
            sobject = record["attributes"]["type"]
            target = (
                self.store.get(sobject, str(record["Id"])) if self.org.exists(sobject) else None
            )
            if target is None:
                deleted = self.org.exists(sobject) and self.store.deleted(
                    sobject, str(record["Id"])
                )
                code = "ENTITY_IS_DELETED" if deleted else "INVALID_CROSS_REFERENCE_KEY"
                plans.append((record["Id"], [error(code, f"invalid record id {record['Id']}")]))
                continue
            fields = {k: v for k, v in record.items() if k not in ("attributes", "Id")}
            changes, errors = self.store.prepare(sobject, fields, target)
            plans.append(((sobject, target, changes), errors))
        apply, plans = self._all_or_none(plans, bool(request.body.get("allOrNone")))
        results: list[dict[str, Any]] = []
        for plan, errors in plans:
            if errors or not apply:
                record_id = plan if isinstance(plan, str) else plan[1]["Id"] if plan else None
                results.append({"id": record_id, "success": False, "errors": errors})
                continue
            sobject, target, changes = plan
            self.store.apply(sobject, changes, target)
            results.append({"id": target["Id"], "success": True, "errors": []})
        return Reply(200, results)

    def _h_delete_many(self, request: RecordedRequest) -> Reply:
        results: list[dict[str, Any]] = []
        for record_id in [i for i in request.query.get("ids", "").split(",") if i]:
            found = self.store.by_id(record_id)
            if found is None:
                results.append(
                    {
                        "id": record_id,
                        "success": False,
                        "errors": [error("ENTITY_IS_DELETED", "entity is deleted")],
                    }
                )
                continue
            self.store.delete(*found)
            results.append({"id": record_id, "success": True, "errors": []})
        return Reply(200, results)

    def _h_read_many(self, request: RecordedRequest) -> Reply:
        sobject = request.params["type"]
        unknown = self._unknown_type(sobject)
        if unknown is not None:
            return unknown
        names = [n for n in request.query.get("fields", "").split(",") if n]
        bad = self._invisible(sobject, names)
        if not names or bad is not None:
            return Reply(
                400, [_sf("INVALID_FIELD", f"No such column '{bad}' on entity '{sobject}'")]
            )
        out: list[dict[str, Any] | None] = []
        for record_id in [i for i in request.query.get("ids", "").split(",") if i]:
            record = self.store.get(sobject, record_id)
            out.append(None if record is None else self._row(request, sobject, record, names))
        return Reply(200, out)

    # --- Tooling API ------------------------------------------------------------------
    def _store_custom_field(self, sobject: str, name: str, metadata: dict[str, Any]) -> str:
        field_id = self.store.new_id("CustomField")
        now = sf_time(int(self.wall() * 1000))
        self.collection("CustomField")[field_id] = {
            "Id": field_id,
            "DeveloperName": name.removesuffix("__c"),
            "TableEnumOrId": sobject,
            "NamespacePrefix": None,
            "FullName": f"{sobject}.{name}",
            "Metadata": dict(metadata),
            "CreatedDate": now,
            "LastModifiedDate": now,
        }
        return field_id

    def _h_custom_field(self, request: RecordedRequest) -> Reply:
        if not self.customize_application:
            message = "insufficient access rights: Customize Application is required"
            return Reply(403, [_sf("INSUFFICIENT_ACCESS", message)])
        body = request.body
        sobject, _, name = body["FullName"].partition(".")
        metadata = body["Metadata"]
        problem = self._custom_field_problem(sobject, name, metadata)
        if problem is not None:
            return Reply(400, [_sf("FIELD_INTEGRITY_EXCEPTION", problem)])
        if name.lower() in {n.lower() for n in self.org.custom_fields(sobject)}:
            return Reply(
                400,
                [
                    _sf(
                        "DUPLICATE_DEVELOPER_NAME",
                        f"There is already a field named {name} on {sobject}.",
                    )
                ],
            )
        field_id = self._store_custom_field(sobject, name, metadata)
        return Reply(
            201, {"id": field_id, "success": True, "errors": [], "warnings": [], "infos": []}
        )

    def _custom_field_problem(
        self, sobject: str, name: str, metadata: dict[str, Any]
    ) -> str | None:
        if not self.org.exists(sobject) or sobject in ("User", "PermissionSet", "FieldPermissions"):
            return f"FullName: no such object {sobject!r}"
        if not CUSTOM_NAME.match(name) or len(name) > 43:
            return f"FullName: {name!r} is not a valid custom field name (Name__c, ≤ 40 characters)"
        kind = metadata["type"]
        if kind not in CUSTOM_TYPES:
            return f"Metadata.type: unsupported field type {kind!r}"
        if kind == "Text" and not 1 <= int(metadata.get("length") or 0) <= 255:
            return "Metadata.length: a Text field needs a length from 1 to 255"
        if kind == "LongTextArea" and not 256 <= int(metadata.get("length") or 0) <= 131_072:
            return "Metadata.length: a LongTextArea needs a length from 256 to 131072"
        if kind == "LongTextArea" and not metadata.get("visibleLines"):
            return "Metadata.visibleLines: a LongTextArea needs visibleLines"
        if (metadata.get("externalId") or metadata.get("unique")) and not CUSTOM_TYPES[kind][1]:
            return f"Metadata.externalId: a {kind} field cannot be an external id or unique"
        return None


_HANDLERS: dict[tuple[str, str], Callable[[SalesforceServer, RecordedRequest], Reply]] = {
    ("POST", "oauth2/token"): SalesforceServer._h_token,
    ("GET", "limits"): SalesforceServer._h_limits,
    ("GET", "query"): SalesforceServer._h_query,
    ("GET", "search"): SalesforceServer._h_search,
    ("GET", "tooling/query"): SalesforceServer._h_tooling_query,
    ("POST", "tooling/sobjects/CustomField"): SalesforceServer._h_custom_field,
    ("PATCH", "composite/{type}"): SalesforceServer._h_upsert_many,
    ("GET", "composite/{type}"): SalesforceServer._h_read_many,
    ("POST", "composite"): SalesforceServer._h_create_many,
    ("PATCH", "composite"): SalesforceServer._h_update_many,
    ("DELETE", "composite"): SalesforceServer._h_delete_many,
    ("GET", "sobjects/{type}/describe"): SalesforceServer._h_describe,
    ("POST", "sobjects/{type}"): SalesforceServer._h_create,
    ("GET", "sobjects/{type}/:id"): SalesforceServer._h_read,
    ("PATCH", "sobjects/{type}/:id"): SalesforceServer._h_update,
    ("DELETE", "sobjects/{type}/:id"): SalesforceServer._h_delete,
    ("PATCH", "sobjects/{type}/{field}/:value"): SalesforceServer._h_upsert_one,
    ("GET", "sobjects/{type}/{field}/:value"): SalesforceServer._h_read_by_external,
}
assert {(r.method, r.name) for r in ROUTES} == set(_HANDLERS), "a route without a handler"
