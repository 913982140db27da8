"""``wa-bridge crm setup`` for Salesforce: the custom fields the connector writes, created
and granted to the API user.

:func:`required_fields` says, without I/O, which ``WA_*__c`` fields the connector writes
for a mapping (the names of :mod:`.fields`, which the connector writes too) and of what
type, from the mapping's field types and lengths: text up to 255 characters is
``Text(255)``, longer (or unbounded) text a ``LongTextArea``, datetimes ``DateTime``,
numbers ``Number``, booleans ``Checkbox``; the upsert keys are ``Text(255)``, External ID,
Unique.

:func:`ensure_fields` checks the org (each object's describe, which shows what the API
user can see, and the Tooling API's ``CustomField`` list, which shows what exists) and
per field reports ``exists`` (usable; a wrong type or length is a ``problem``),
``created`` (Tooling API ``CustomField``), ``granted`` (it existed, hidden from the API
user) or ``missing`` (a dry run). Salesforce gives a new field no field-level security, so
every created or hidden field is granted Read and Edit through the permission set
``WA_Bridge`` (created when absent), assigned to the API user (the OAuth token's user, or
``WA_BRIDGE_CRM_USERNAME``). Without "Customize Application" (or the right to manage
permission sets) each field that needs it becomes a ``problem`` line saying exactly what an
admin must create and grant. Requests back off on rate limits through the org's gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

import httpx

from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.connectors._setup import Outcome, SetupReport, Status, send_patiently
from wa_bridge.connectors.base import SetupResult
from wa_bridge.connectors.salesforce import fields as naming
from wa_bridge.connectors.salesforce.auth import api_user_id, salesforce_client
from wa_bridge.connectors.salesforce.dialect import SALESFORCE_ERRORS
from wa_bridge.connectors.salesforce.fields import EXTERNAL_IDS, SObject
from wa_bridge.errors import CrmRejected
from wa_bridge.mapping.spec import MappingSpec, load_spec
from wa_bridge.operations import FieldValue
from wa_bridge.resources import resolve_mappings_path

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from wa_bridge.settings import Settings

__all__ = [
    "PERMISSION_SET",
    "CustomField",
    "OrgAccess",
    "ensure_fields",
    "external_id_fields",
    "required_fields",
    "set_up",
]

FieldType = Literal["Text", "LongTextArea", "Number", "DateTime", "Checkbox", "Email", "Phone"]
PERMISSION_SET: Final = "WA_Bridge"
PERMISSION_SET_LABEL: Final = "WhatsApp (wa-bridge)"
TEXT_MAX: Final = 255
LONG_TEXT_DEFAULT: Final = 32_768
NAME_MAX: Final = 40  # a custom field's API name, without __c
# describe's types that hold what we write in a field of each kind
_FITS: Final[Mapping[FieldType, frozenset[str]]] = {
    "Text": frozenset({"string", "textarea", "email", "phone", "url", "picklist", "combobox"}),
    "LongTextArea": frozenset({"textarea"}),
    "Number": frozenset({"double", "int", "currency", "percent"}),
    "DateTime": frozenset({"datetime"}),
    "Checkbox": frozenset({"boolean"}),
    "Email": frozenset({"email", "string", "textarea"}),
    "Phone": frozenset({"phone", "string", "textarea"}),
}


@dataclass(frozen=True, slots=True)
class CustomField:
    """One custom field the connector writes on one sObject, and what it must hold."""

    sobject: SObject
    name: str  # WA_X__c
    type: FieldType
    length: int | None = None  # Text and LongTextArea: created with this length
    need: int | None = None  # the longest text the mapping lets through (None: unknown)
    scale: int = 0  # Number
    external_id: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.sobject}.{self.name}"

    def kind(self) -> str:
        """``Text(255), External ID, Unique``, ``DateTime``, ``Number(18, 4)``…"""
        if self.type in ("Text", "LongTextArea"):
            text = f"{self.type}({self.length})"
        elif self.type == "Number":
            text = f"Number(18, {self.scale})"
        else:
            text = self.type
        return f"{text}, External ID, Unique" if self.external_id else text

    def metadata(self) -> dict[str, object]:
        """The Tooling API's ``CustomField.Metadata`` for creating it."""
        label = self.name.removesuffix("__c").replace("_", " ")[:40]
        body: dict[str, object] = {
            "type": self.type,
            "label": label,
            "description": "Written by wa-bridge from WhatsApp events.",
        }
        if self.type in ("Text", "LongTextArea"):
            body["length"] = self.length
        if self.type == "LongTextArea":
            body["visibleLines"] = 3
        if self.type == "Number":
            body.update(precision=18, scale=self.scale)
        if self.type == "Checkbox":
            body["defaultValue"] = "false"
        if self.external_id:
            body.update(externalId=True, unique=True)
        return body

    def problem_with(self, described: Mapping[str, Any]) -> str | None:
        """What is wrong with the field as the org describes it, for what we write."""
        have = str(described.get("type", ""))
        length = int(described.get("length") or 0)
        shape = f"{have}({length})" if length else have
        if have not in _FITS[self.type]:
            return f"is {shape}; wa-bridge writes {self.kind()}: change its type or archive it"
        if self.need is not None and length and length < self.need:
            return f"is {shape}; values reach {self.need} characters: make it longer"
        if self.external_id and not described.get("externalId"):
            return "is not an External ID field, so records cannot be upserted by it"
        if not described.get("updateable", True):
            return f"is read-only for the API user: grant Edit (permission set {PERMISSION_SET})"
        return None


# --- what the mapping makes the connector write ------------------------------------------
@dataclass(frozen=True, slots=True)
class _Need:
    """What a mapped field's values are (its type, longest text, list)."""

    type: str = "string"
    max_length: int | None = None
    bounded: bool = False  # short even without max_length (a const, catalog, enum…)
    is_list: bool = False

    def widen(self, other: _Need) -> _Need:
        same = self.type == other.type
        lengths = (self.max_length, other.max_length)
        return _Need(
            self.type if same else "string",
            None if None in lengths else max(n for n in lengths if n is not None),
            self.bounded and other.bounded,
            self.is_list or other.is_list,
        )

    def field(self, sobject: SObject, name: str) -> CustomField:
        if self.type == "datetime" and not self.is_list:
            return CustomField(sobject, name, "DateTime")
        if self.type in ("int", "decimal") and not self.is_list:
            return CustomField(sobject, name, "Number", scale=4 if self.type == "decimal" else 0)
        if self.type == "bool" and not self.is_list:
            return CustomField(sobject, name, "Checkbox")
        if self.type == "email" and not self.is_list:
            return CustomField(sobject, name, "Email")
        if self.type == "phone" and not self.is_list:
            return CustomField(sobject, name, "Phone")
        short = self.bounded or self.type == "enum" or self.max_length is not None
        if not self.is_list and short and (self.max_length or 0) <= TEXT_MAX:
            return CustomField(sobject, name, "Text", length=TEXT_MAX, need=self.max_length)
        length = self.max_length if self.max_length and not self.is_list else LONG_TEXT_DEFAULT
        return CustomField(sobject, name, "LongTextArea", length=max(length, TEXT_MAX + 1))


def _needs(spec: MappingSpec) -> dict[str, dict[str, _Need]]:
    """Operation kind → field → what its values are, over every rule of the mapping."""
    out: dict[str, dict[str, _Need]] = {}
    for rules in spec.rules.values():
        for rule in rules:
            fields = out.setdefault(rule.kind, {})
            for f in rule.fields:
                data = f.data if isinstance(f.data, dict) else {}
                max_length = data.get("max_length")
                need = _Need(
                    str(data.get("type") or "string"),
                    int(max_length) if isinstance(max_length, int) else None,
                    any(k in data for k in ("const", "catalog", "lookup", "values")),
                    bool(data.get("list")),
                )
                known = fields.get(f.name)
                fields[f.name] = need if known is None else known.widen(need)
    return out


def _consts(spec: MappingSpec, kind: str) -> dict[str, Any]:
    """The values ``kind``'s fields have without an event: a ``const``, else a ``default``
    (the channel and purpose that name a consent's fields)."""
    return {
        f.name: f.data["const"] if "const" in f.data else f.data["default"]
        for rules in spec.rules.values()
        for rule in rules
        if rule.kind == kind
        for f in rule.fields
        if isinstance(f.data, dict) and ("const" in f.data or "default" in f.data)
    }


def _written(spec: MappingSpec, deals: bool) -> Iterable[tuple[SObject, str, _Need]]:
    """(sObject, field, what it holds) for each field the connector writes."""
    needs = _needs(spec)
    if deals:
        yield from _opportunity(needs.get("upsert_deal", {}))
    for name, need in needs.get("upsert_contact", {}).items():
        yield "Contact", naming.contact_field(name), need
    consent = needs.get("set_consent", {})
    if consent:
        # consent_fields puts each field's value in its Contact field: given each field's
        # own name as its value (and the channel and purpose the mapping fixes, which name
        # the fields), it says which Contact field holds which mapped field
        sources: dict[str, FieldValue] = {name: name for name in consent}
        fixed = _consts(spec, "set_consent")
        sources.update({k: fixed[k] for k in ("channel", "purpose") if k in fixed})
        for target, source in naming.consent_fields(sources).items():
            yield "Contact", target, consent.get(str(source), _Need())
    for name, need in needs.get("upsert_case", {}).items():
        if name != "status":
            yield "Case", naming.case_field(name), need
    for name, need in needs.get("record_outcome", {}).items():
        for sobject in ("Case", "Contact"):
            yield sobject, naming.outcome_field(name), need
    notes = needs.get("add_note", {})
    variants = (False, True) if "status" in notes else (False,)
    for name, need in notes.items():
        for is_status_only in variants:
            yield "Task", naming.task_field(name, is_status_only=is_status_only), need


def _opportunity(deal: Mapping[str, _Need]) -> Iterable[tuple[SObject, str, _Need]]:
    """The Opportunity fields of the mapping's deals (and the key of their case)."""
    if deal:
        yield "Opportunity", naming.CASE_KEY_REF, _Need(max_length=TEXT_MAX)
    for name, need in deal.items():
        yield "Opportunity", naming.deal_field(name), need


def required_fields(spec: MappingSpec, *, deals: bool = False) -> dict[SObject, list[CustomField]]:
    """sObject → the custom fields the connector writes for ``spec`` (keys first); with
    ``deals`` (WA_BRIDGE_CRM_DEALS) the Opportunity's too. Pure."""
    sobjects = [s for s in EXTERNAL_IDS if deals or s != "Opportunity"]
    out: dict[SObject, dict[str, CustomField]] = {sobject: {} for sobject in sobjects}
    for sobject in sobjects:
        name = EXTERNAL_IDS[sobject]
        out[sobject][name] = CustomField(
            sobject, name, "Text", length=TEXT_MAX, need=TEXT_MAX, external_id=True
        )
    for sobject, name, need in _written(spec, deals):
        if not name.endswith("__c") or name in out[sobject]:
            continue
        out[sobject][name] = need.field(sobject, name)
    return {sobject: list(fields.values()) for sobject, fields in out.items()}


def external_id_fields() -> list[str]:
    """``Contact.WA_Contact_Key__c (Text(255), External ID, Unique)``, one per sObject."""
    return [
        f"{sobject}.{name} (Text({TEXT_MAX}), External ID, Unique)"
        for sobject, name in EXTERNAL_IDS.items()
        if sobject != "Opportunity"
    ]


# --- the org ------------------------------------------------------------------------------
@dataclass
class OrgAccess:
    """The org's REST and Tooling API as setup uses them (every request backs off)."""

    client: httpx.AsyncClient
    api_version: str
    clock: Clock = SYSTEM_CLOCK

    @property
    def base(self) -> str:
        return f"/services/data/{self.api_version}"

    async def _send(self, method: str, path: str, action: str, **kw: Any) -> httpx.Response:
        return await send_patiently(
            self.client,
            method,
            self.base + path,
            dialect=SALESFORCE_ERRORS,
            action=action,
            clock=self.clock,
            **kw,
        )

    async def describe(self, sobject: str) -> dict[str, dict[str, Any]]:
        """The fields the API user can see, by lower-cased name."""
        body = (await self._send("GET", f"/sobjects/{sobject}/describe", "describe")).json()
        fields = body.get("fields") if isinstance(body, dict) else None
        return {
            str(f["name"]).lower(): f for f in fields or [] if isinstance(f, dict) and f.get("name")
        }

    async def query(self, soql: str, *, tooling: bool = False) -> list[dict[str, Any]]:
        path = "/tooling/query" if tooling else "/query"
        body = (await self._send("GET", path, "query", params={"q": soql})).json()
        rows = body.get("records") if isinstance(body, dict) else None
        return [r for r in rows or [] if isinstance(r, dict)]

    async def custom_fields(self, sobject: str) -> set[str]:
        """Lower-cased names of the custom fields that exist on ``sobject``."""
        rows = await self.query(
            "SELECT Id, DeveloperName, TableEnumOrId FROM CustomField "
            f"WHERE TableEnumOrId = {_quote(sobject)}",
            tooling=True,
        )
        return {f"{r['DeveloperName']}__c".lower() for r in rows if r.get("DeveloperName")}

    async def create_field(self, spec: CustomField) -> None:
        body = {"FullName": spec.full_name, "Metadata": spec.metadata()}
        await self._send(
            "POST", "/tooling/sobjects/CustomField", f"create {spec.full_name}", json=body
        )

    async def create(self, sobject: str, values: Mapping[str, Any]) -> str:
        answer = await self._send("POST", f"/sobjects/{sobject}", f"create {sobject}", json=values)
        return str(answer.json()["id"])

    async def update(self, sobject: str, record_id: str, values: Mapping[str, Any]) -> None:
        await self._send(
            "PATCH", f"/sobjects/{sobject}/{record_id}", f"update {sobject}", json=values
        )


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- setting the org up -------------------------------------------------------------------
@dataclass
class _Item:
    spec: CustomField
    status: Status
    detail: str = ""
    needs_grant: bool = False


@dataclass
class _Run:
    org: OrgAccess
    dry_run: bool
    user_id: str | None
    username: str | None
    items: list[_Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    async def check(self, sobject: SObject, specs: Sequence[CustomField]) -> None:
        visible = await self.org.describe(sobject)
        existing = await self.org.custom_fields(sobject)
        for spec in specs:
            self.items.append(await self._one(spec, visible, existing))

    async def _one(
        self, spec: CustomField, visible: Mapping[str, Any], existing: set[str]
    ) -> _Item:
        if len(spec.name.removesuffix("__c")) > NAME_MAX:
            return _Item(spec, "problem", f"longer than Salesforce's {NAME_MAX} characters")
        described = visible.get(spec.name.lower())
        if described is not None:
            problem = spec.problem_with(described)
            return _Item(spec, "problem", problem) if problem else _Item(spec, "exists")
        if spec.name.lower() in existing:
            detail = f"exists, hidden from the API user; would grant it ({PERMISSION_SET})"
            if self.dry_run:
                return _Item(spec, "missing", detail)
            return _Item(spec, "granted", needs_grant=True)
        if self.dry_run:
            return _Item(spec, "missing", f"would create {spec.kind()}")
        try:
            await self.org.create_field(spec)
        except CrmRejected as exc:
            if exc.status_code == 403:
                return _Item(spec, "problem", _by_hand(spec, create=True))
            return _Item(spec, "problem", f"Salesforce refused {spec.kind()}: {exc.crm_error}")
        return _Item(spec, "created", spec.kind(), needs_grant=True)

    async def grant(self) -> None:
        """Grant Read and Edit on every created or hidden field through the permission
        set, assigned to the API user; refusals become problem lines."""
        pending = [item for item in self.items if item.needs_grant]
        if not pending:
            return
        try:
            set_id = await self._permission_set()
            for item in pending:
                await self._field_permission(set_id, item.spec)
            await self._assign(set_id)
        except CrmRejected as exc:
            if exc.status_code != 403:
                raise
            for item in pending:
                item.status, item.detail = "problem", _by_hand(item.spec, create=False)
            self.notes.append(
                f"the API user may not manage permission sets ({exc.crm_error}): an admin "
                "grants the fields above"
            )

    async def _permission_set(self) -> str:
        rows = await self.org.query(
            f"SELECT Id FROM PermissionSet WHERE Name = {_quote(PERMISSION_SET)}"
        )
        if rows:
            return str(rows[0]["Id"])
        values = {"Name": PERMISSION_SET, "Label": PERMISSION_SET_LABEL}
        set_id = await self.org.create("PermissionSet", values)
        self.notes.append(f"permission set {PERMISSION_SET}: created")
        return set_id

    async def _field_permission(self, set_id: str, spec: CustomField) -> None:
        grant = {
            "ParentId": set_id,
            "SobjectType": spec.sobject,
            "Field": spec.full_name,
            "PermissionsRead": True,
            "PermissionsEdit": True,
        }
        try:
            await self.org.create("FieldPermissions", grant)
        except CrmRejected as exc:
            if "DUPLICATE_VALUE" not in exc.crm_error:
                raise
            await self._edit_existing_grant(set_id, spec)

    async def _edit_existing_grant(self, set_id: str, spec: CustomField) -> None:
        rows = await self.org.query(
            "SELECT Id, PermissionsRead, PermissionsEdit FROM FieldPermissions "
            f"WHERE ParentId = {_quote(set_id)} AND Field = {_quote(spec.full_name)}"
        )
        for row in rows:
            if not (row.get("PermissionsRead") and row.get("PermissionsEdit")):
                values = {"PermissionsRead": True, "PermissionsEdit": True}
                await self.org.update("FieldPermissions", str(row["Id"]), values)

    async def _assign(self, set_id: str) -> None:
        user_id = self.user_id or await self._user_by_name()
        if user_id is None:
            self.notes.append(
                f"assign permission set {PERMISSION_SET} to the API user (Setup > Users), "
                "or set WA_BRIDGE_CRM_USERNAME and run setup again"
            )
            return
        rows = await self.org.query(
            "SELECT Id FROM PermissionSetAssignment "
            f"WHERE PermissionSetId = {_quote(set_id)} AND AssigneeId = {_quote(user_id)}"
        )
        if not rows:
            await self.org.create(
                "PermissionSetAssignment", {"PermissionSetId": set_id, "AssigneeId": user_id}
            )
            self.notes.append(f"permission set {PERMISSION_SET}: assigned to the API user")

    async def _user_by_name(self) -> str | None:
        if not self.username:
            return None
        rows = await self.org.query(f"SELECT Id FROM User WHERE Username = {_quote(self.username)}")
        return str(rows[0]["Id"]) if rows else None

    async def verify(self) -> None:
        """Describe again: a created or granted field the API user still cannot see (or
        edit) is a problem."""
        touched = [i for i in self.items if i.needs_grant and i.status != "problem"]
        for sobject in dict.fromkeys(i.spec.sobject for i in touched):
            visible = await self.org.describe(sobject)
            for item in (i for i in touched if i.spec.sobject == sobject):
                described = visible.get(item.spec.name.lower())
                if described is None:
                    item.status = "problem"
                    item.detail = (
                        f"{item.detail + '; ' if item.detail else ''}still hidden from the "
                        f"API user: assign permission set {PERMISSION_SET} to it"
                    )
                elif (problem := item.spec.problem_with(described)) is not None:
                    item.status, item.detail = "problem", problem

    def report(self) -> SetupReport:
        outcomes = tuple(
            Outcome(i.spec.sobject, i.spec.name, i.status, i.detail) for i in self.items
        )
        notes = list(self.notes)
        if any(i.status == "problem" and "an admin" in i.detail for i in self.items):
            notes.insert(0, "an admin must create or grant the fields marked problem (see each)")
        return SetupReport(outcomes, tuple(notes))


def _by_hand(spec: CustomField, *, create: bool) -> str:
    where = f"Setup > Object Manager > {spec.sobject} > Fields & Relationships"
    grant = f"grant Read and Edit on it to the API user (permission set {PERMISSION_SET})"
    if create:
        return (
            f"no permission to create fields: an admin creates it in {where} as "
            f"{spec.kind()}, then must {grant}"
        )
    return f"an admin must {grant}"


async def ensure_fields(
    client: httpx.AsyncClient,
    fields: Mapping[SObject, Sequence[CustomField]],
    *,
    api_version: str = "v61.0",
    dry_run: bool = False,
    user_id: str | None = None,
    username: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> SetupReport:
    """Check, create and grant ``fields`` in the org behind ``client`` (see the module
    docstring). ``user_id`` (else ``username``) is the API user the permission set is
    assigned to. Raises :mod:`wa_bridge.errors` errors for a failing org (sign-in refused,
    unreachable, budget spent); everything else is a report line."""
    run = _Run(OrgAccess(client, api_version, clock), dry_run, user_id, username)
    for sobject, specs in fields.items():
        await run.check(sobject, specs)
    if not dry_run:
        await run.grant()
        await run.verify()
    return run.report()


async def set_up(settings: Settings, dry_run: bool, engine: AsyncEngine | None) -> SetupResult:
    """Create and grant the fields the configured mapping makes the connector write (or,
    with ``dry_run``, only report)."""
    spec = load_spec(resolve_mappings_path(settings.mappings_path))
    fields = required_fields(spec, deals=bool(settings.crm_deals))
    client, auth = salesforce_client(settings, engine)
    async with client:
        if auth is not None:
            await auth.current()  # the token's answer names the API user
        report = await ensure_fields(
            client,
            fields,
            api_version=settings.salesforce_api_version,
            dry_run=dry_run,
            user_id=api_user_id(auth),
            username=settings.crm_username,
        )
    return report.result()
