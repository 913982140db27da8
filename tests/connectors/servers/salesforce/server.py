"""SalesforceServer: a Salesforce org's REST API as /work/shared/fixtures/CRM.md describes it.

Base ``/services/data/vXX.X``: sObject rows (``POST /sobjects/{T}``, ``GET|PATCH|DELETE
/sobjects/{T}/{Id}``, upsert ``PATCH /sobjects/{T}/{ExtField}/{value}``, ``GET
/sobjects/{T}/describe``), sObject Collections (``PATCH /composite/sobjects/{T}/{ExtField}``
upsert, ``POST|PATCH|DELETE /composite/sobjects``, ``GET /composite/sobjects/{T}``),
Composite (``POST /composite``: up to 25 subrequests in one API call, see ``subrequests.py``),
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
from . import composite, queries, rows, soql, sosl, subrequests, tooling
from .errors import sf_error
from .oauth import SalesforceOAuth
from .records import Record, Records
from .schema import Org

_B = r"/services/data/v(?P<version>\d+\.\d)"
ROUTES = (
    Route("POST", "/services/oauth2/token", "oauth2/token", auth=True),
    Route("GET", _B + "/limits/?", "limits"),
    Route("GET", _B + "/query/?", "query"),
    Route("GET", _B + "/search/?", "search"),
    Route("GET", _B + "/tooling/query/?", "tooling/query"),
    Route("POST", _B + "/tooling/sobjects/CustomField/?", "tooling/sobjects/CustomField"),
    Route("POST", _B + "/composite/?", "composite/subrequests"),
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

    def expire_credentials(self) -> None:
        self.expire_sessions()

    def spend_daily_budget(self) -> None:
        with self._lock:
            self.budget.used = self.budget.limit

    def leave_daily_budget(self, requests: int) -> None:
        with self._lock:
            self.budget.used = max(0, self.budget.limit - requests)

    def renew_daily_budget(self) -> None:
        with self._lock:
            self.budget.reset()
            self._wait_ran_out()

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
            field_id = tooling.store_custom_field(self, sobject, name, metadata)
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
            return self._check_read(request)
        if name == "composite/subrequests":
            return subrequests.check(self, request)
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

    def _check_read(self, request: RecordedRequest) -> list[str]:
        if request.body is not None:
            return [f"a {request.method} has no body"]
        if request.route_name in ("query", "tooling/query"):
            return self._check_query(request, sosl_search=False)
        if request.route_name == "search":
            return self._check_query(request, sosl_search=True)
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
            return Reply(404, [sf_error("NOT_FOUND", "The requested resource does not exist")])
        if "URI of" in message:
            return Reply(414, [sf_error("URI_TOO_LONG", message)])
        return Reply(400, [sf_error(code or "JSON_PARSER_ERROR", message)])

    def error_reply(self, status: int, message: str, *, field: str | None = None) -> Reply:
        code = {
            400: "JSON_PARSER_ERROR",
            401: "INVALID_SESSION_ID",
            403: "REQUEST_LIMIT_EXCEEDED",
            404: "NOT_FOUND",
        }.get(status, "UNKNOWN_EXCEPTION")
        if status == 401:
            message = "Session expired or invalid"
        return Reply(status, [sf_error(code, message, [field] if field else None)])

    def fault_reply(self, fault: Fault) -> Reply:
        if fault.status == 403 and fault.body is None:
            body = [sf_error("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")]
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
            return Reply(403, [sf_error("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")])
        return None

    def decorate(self, request: RecordedRequest, reply: Reply) -> None:
        if request.caller:
            reply.headers["Sforce-Limit-Info"] = f"api-usage={self.budget.used}/{self.budget.limit}"

    # === handlers =====================================================================
    def handle(self, request: RecordedRequest) -> Reply:
        with self.store.index.active():
            return _HANDLERS[(request.method, request.route_name)](self, request)

    def token_endpoint(self, request: RecordedRequest) -> Reply:
        return self.oauth.token(request.body or {}, server_url=self.url)

    def limits_endpoint(self, request: RecordedRequest) -> Reply:
        daily = {"Max": self.budget.limit, "Remaining": self.budget.remaining}
        return Reply(200, {"DailyApiRequests": daily})

    # --- SOQL, SOSL -------------------------------------------------------------------

    # --- one record -------------------------------------------------------------------

    # --- collections ------------------------------------------------------------------

    # --- Tooling API ------------------------------------------------------------------


_HANDLERS: dict[tuple[str, str], Callable[[SalesforceServer, RecordedRequest], Reply]] = {
    ("POST", "oauth2/token"): SalesforceServer.token_endpoint,
    ("GET", "limits"): SalesforceServer.limits_endpoint,
    ("GET", "query"): queries.soql_query,
    ("GET", "search"): queries.sosl_search,
    ("GET", "tooling/query"): queries.tooling_query,
    ("POST", "tooling/sobjects/CustomField"): tooling.create_custom_field,
    ("POST", "composite/subrequests"): subrequests.run,
    ("PATCH", "composite/{type}"): composite.upsert_many,
    ("GET", "composite/{type}"): composite.read_many,
    ("POST", "composite"): composite.create_many,
    ("PATCH", "composite"): composite.update_many,
    ("DELETE", "composite"): composite.delete_many,
    ("GET", "sobjects/{type}/describe"): rows.describe,
    ("POST", "sobjects/{type}"): rows.create,
    ("GET", "sobjects/{type}/:id"): rows.read,
    ("PATCH", "sobjects/{type}/:id"): rows.update,
    ("DELETE", "sobjects/{type}/:id"): rows.delete_row,
    ("PATCH", "sobjects/{type}/{field}/:value"): rows.upsert,
    ("GET", "sobjects/{type}/{field}/:value"): rows.read_by_external_id,
}
assert {(r.method, r.name) for r in ROUTES} == set(_HANDLERS), "a route without a handler"
