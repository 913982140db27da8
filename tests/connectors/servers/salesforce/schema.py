"""A Salesforce org's schema: standard fields per sObject, custom fields, field security.

Standard fields follow Salesforce's object reference (Contact, Case, Task, Opportunity,
OpportunityContactRole, Account, and the setup objects PermissionSet, FieldPermissions,
PermissionSetAssignment, User). Custom fields exist once created (Tooling API
``CustomField``, kept as records in ``records["CustomField"]``) and, as CRM.md says, are
invisible and unwritable until a ``FieldPermissions`` record of a permission set assigned
to the API user grants them. ``Org.strict`` off is an org that was set up: every
``WA_*__c`` field exists, visible and writable (``WA_*_Key__c`` are external ids).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

FieldType = Literal[
    "id",
    "string",
    "textarea",
    "email",
    "phone",
    "url",
    "picklist",
    "multipicklist",
    "combobox",
    "reference",
    "date",
    "datetime",
    "double",
    "currency",
    "percent",
    "int",
    "boolean",
]
SYSTEM = "system"


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: FieldType = "string"
    length: int = 0
    required: bool = False  # on create (not nillable, no default)
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    unique: bool = False
    reference_to: tuple[str, ...] = ()
    relationship: str | None = None
    custom: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    label: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "length": self.length,
            "nillable": not self.required,
            "createable": self.createable,
            "updateable": self.updateable,
            "externalId": self.external_id,
            "unique": self.unique,
            "custom": self.custom,
            "idLookup": self.name == "Id" or self.external_id,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship,
            "picklistValues": [
                {"value": v, "label": v, "active": True, "defaultValue": False}
                for v in self.picklist
            ],
            "restrictedPicklist": self.restricted,
        }


def _ro(name: str, type_: FieldType = "datetime") -> FieldDef:
    return FieldDef(name, type_, createable=False, updateable=False)


def _ref(name: str, *to: str, relationship: str | None = None, required: bool = False) -> FieldDef:
    return FieldDef(
        name,
        "reference",
        18,
        required=required,
        reference_to=to,
        relationship=relationship or name.removesuffix("Id"),
    )


_SYSTEM_FIELDS = (
    FieldDef("Id", "id", 18, createable=False, updateable=False),
    _ro("CreatedDate"),
    _ro("LastModifiedDate"),
    _ro("SystemModstamp"),
    _ro("IsDeleted", "boolean"),
    FieldDef("CreatedById", "reference", 18, createable=False, updateable=False),
    FieldDef("LastModifiedById", "reference", 18, createable=False, updateable=False),
)
_OWNED = (*_SYSTEM_FIELDS, _ref("OwnerId", "User"))

CASE_STATUSES = ("New", "Working", "Escalated", "Closed")
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
OPPORTUNITY_STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
CLOSED_STAGES = ("Closed Won", "Closed Lost")


def _fields(*defs: FieldDef) -> dict[str, FieldDef]:
    return {d.name: d for d in defs}


STANDARD: dict[str, dict[str, FieldDef]] = {
    "Account": _fields(
        *_OWNED,
        FieldDef("Name", "string", 255, required=True),
        FieldDef("Phone", "phone", 40),
        FieldDef("Website", "url", 255),
    ),
    "Contact": _fields(
        *_OWNED,
        FieldDef("FirstName", "string", 40),
        FieldDef("LastName", "string", 80, required=True),
        FieldDef("Name", "string", 121, createable=False, updateable=False),
        FieldDef("Email", "email", 80),
        FieldDef("Phone", "phone", 40),
        FieldDef("MobilePhone", "phone", 40),
        FieldDef("HomePhone", "phone", 40),
        FieldDef("OtherPhone", "phone", 40),
        FieldDef("Title", "string", 128),
        FieldDef("Description", "textarea", 32_000),
        FieldDef("LeadSource", "picklist", 255),
        FieldDef("MailingCountry", "string", 80),
        _ref("AccountId", "Account"),
    ),
    "Case": _fields(
        *_OWNED,
        FieldDef("CaseNumber", "string", 30, createable=False, updateable=False),
        FieldDef("Subject", "string", 255),
        FieldDef("Description", "textarea", 32_000),
        FieldDef("Status", "picklist", 255, picklist=CASE_STATUSES),
        FieldDef("Origin", "picklist", 255, picklist=("Phone", "Email", "Web")),
        FieldDef("Reason", "picklist", 255),
        FieldDef("Priority", "picklist", 255, picklist=("High", "Medium", "Low")),
        FieldDef("Type", "picklist", 255),
        FieldDef("SuppliedName", "string", 80),
        FieldDef("SuppliedEmail", "email", 80),
        FieldDef("SuppliedPhone", "string", 40),
        _ro("IsClosed", "boolean"),
        _ro("ClosedDate"),
        _ref("ContactId", "Contact"),
        _ref("AccountId", "Account"),
    ),
    "Task": _fields(
        *_OWNED,
        FieldDef("Subject", "combobox", 255),
        FieldDef("Description", "textarea", 32_000),
        FieldDef("Status", "picklist", 255, picklist=TASK_STATUSES),
        FieldDef("Priority", "picklist", 255, picklist=("High", "Normal", "Low")),
        FieldDef("ActivityDate", "date"),
        FieldDef("TaskSubtype", "picklist", 255, picklist=("Task", "Email", "Call", "List Email")),
        FieldDef("Type", "picklist", 255),
        _ro("IsClosed", "boolean"),
        _ref("WhoId", "Contact", relationship="Who"),
        _ref("WhatId", "Case", "Opportunity", "Account", relationship="What"),
    ),
    "Opportunity": _fields(
        *_OWNED,
        FieldDef("Name", "string", 120, required=True),
        FieldDef(
            "StageName",
            "picklist",
            255,
            required=True,
            picklist=OPPORTUNITY_STAGES,
            restricted=True,
        ),
        FieldDef("CloseDate", "date", required=True),
        FieldDef("Amount", "currency"),
        FieldDef("CurrencyIsoCode", "picklist", 3),
        FieldDef("Probability", "percent"),
        FieldDef("Description", "textarea", 32_000),
        FieldDef("LeadSource", "picklist", 255),
        FieldDef("Type", "picklist", 255),
        _ro("IsClosed", "boolean"),
        _ro("IsWon", "boolean"),
        _ref("ContactId", "Contact"),
        _ref("AccountId", "Account"),
    ),
    "OpportunityContactRole": _fields(
        *_SYSTEM_FIELDS,
        replace(_ref("OpportunityId", "Opportunity", required=True), updateable=False),
        _ref("ContactId", "Contact", required=True),
        FieldDef("Role", "picklist", 255),
        FieldDef("IsPrimary", "boolean"),
    ),
    "PermissionSet": _fields(
        *_SYSTEM_FIELDS,
        FieldDef("Name", "string", 80, required=True, unique=True),
        FieldDef("Label", "string", 80, required=True),
        FieldDef("Description", "textarea", 255),
    ),
    "FieldPermissions": _fields(
        *_SYSTEM_FIELDS,
        replace(_ref("ParentId", "PermissionSet", required=True), updateable=False),
        FieldDef("SobjectType", "string", 255, required=True, updateable=False),
        FieldDef("Field", "string", 255, required=True, updateable=False),
        FieldDef("PermissionsRead", "boolean"),
        FieldDef("PermissionsEdit", "boolean"),
    ),
    "PermissionSetAssignment": _fields(
        *_SYSTEM_FIELDS,
        replace(_ref("PermissionSetId", "PermissionSet", required=True), updateable=False),
        replace(_ref("AssigneeId", "User", required=True), updateable=False),
    ),
    "User": _fields(
        *_SYSTEM_FIELDS,
        FieldDef("Username", "string", 80, createable=False, updateable=False),
        FieldDef("Name", "string", 121, createable=False, updateable=False),
        FieldDef("Email", "email", 128, createable=False, updateable=False),
        FieldDef("IsActive", "boolean", createable=False, updateable=False),
    ),
}
ID_PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "Case": "500",
    "Task": "00T",
    "Opportunity": "006",
    "OpportunityContactRole": "00K",
    "PermissionSet": "0PS",
    "FieldPermissions": "01k",
    "PermissionSetAssignment": "0Pa",
    "User": "005",
    "CustomField": "00N",
}
# Polymorphic lookups need ``attributes.type`` in a relationship by external id.
POLYMORPHIC = {"Who", "What"}
SEARCH_GROUPS = {
    "PHONE": ("phone",),
    "EMAIL": ("email",),
    "NAME": ("string",),
    "ALL": ("phone", "email", "string", "textarea"),
}

# Tooling API CustomField Metadata.type → describe type (and whether it may be an
# external id).
CUSTOM_TYPES: dict[str, tuple[FieldType, bool]] = {
    "Text": ("string", True),
    "TextArea": ("textarea", False),
    "LongTextArea": ("textarea", False),
    "Number": ("double", True),
    "Currency": ("currency", False),
    "Percent": ("percent", False),
    "Checkbox": ("boolean", False),
    "Date": ("date", False),
    "DateTime": ("datetime", False),
    "Email": ("email", True),
    "Phone": ("phone", False),
    "Url": ("url", False),
    "Picklist": ("picklist", False),
    "MultiselectPicklist": ("multipicklist", False),
}
CUSTOM_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)__c$")
_IMPLICIT = re.compile(r"^WA_\w+__c$")


def custom_field_def(name: str, metadata: dict[str, Any]) -> FieldDef:
    kind, _ = CUSTOM_TYPES[metadata["type"]]
    values = metadata.get("valueSet", {}).get("valueSetDefinition", {}).get("value", [])
    return FieldDef(
        name,
        kind,
        int(metadata.get("length") or 0),
        external_id=bool(metadata.get("externalId")),
        unique=bool(metadata.get("unique")),
        custom=True,
        picklist=tuple(v.get("fullName", "") for v in values),
        restricted=bool(metadata.get("valueSet", {}).get("restricted")),
        label=str(metadata.get("label") or name),
    )


@dataclass
class Access:
    read: bool = False
    edit: bool = False


@dataclass
class Org:
    """The schema plus who may see what; reads the org's records for FLS."""

    records: dict[str, dict[str, dict[str, Any]]]
    api_user_id: str
    strict: bool = False
    multi_currency: bool = True
    _standard: dict[str, dict[str, FieldDef]] = field(default_factory=lambda: STANDARD)

    def sobjects(self) -> Iterable[str]:
        return self._standard

    def exists(self, sobject: str) -> bool:
        return sobject in self._standard

    def canonical(self, sobject: str) -> str:
        """``sobject`` as the org spells it (SOQL names are case-insensitive)."""
        return next((s for s in self._standard if s.lower() == sobject.lower()), sobject)

    def custom_fields(self, sobject: str) -> dict[str, tuple[str, FieldDef]]:
        """Created custom fields of ``sobject``: name → (CustomField Id, definition)."""
        out = {}
        for record in self.records.get("CustomField", {}).values():
            if record["TableEnumOrId"] == sobject:
                name = record["DeveloperName"] + "__c"
                out[name] = (record["Id"], custom_field_def(name, record["Metadata"]))
        return out

    def find_field(self, sobject: str, name: str) -> FieldDef | None:
        """The field ``name`` (any case) if it exists, whoever may see it."""
        fields = self._standard.get(sobject, {})
        found = fields.get(name) or next(
            (f for n, f in fields.items() if n.lower() == name.lower()), None
        )
        if found is not None:
            if found.name == "CurrencyIsoCode" and not self.multi_currency:
                return None
            return found
        custom = self.custom_fields(sobject)
        hit = custom.get(name) or next(
            (f for n, f in custom.items() if n.lower() == name.lower()), None
        )
        if hit is not None:
            return hit[1]
        if not self.strict and _IMPLICIT.match(name):
            is_key = name.lower().endswith("_key__c")
            return FieldDef(name, "string", 255, external_id=is_key, custom=True)
        return None

    def access(self, sobject: str, definition: FieldDef) -> Access:
        """What the API user may do with the field (field-level security)."""
        if not definition.custom or sobject not in self._standard:
            return Access(True, definition.createable or definition.updateable)
        if definition.name not in self.custom_fields(sobject):
            return Access(True, True)  # an implicit field of a set-up org
        key = f"{sobject}.{definition.name}".lower()
        grant = self.records.get("_grants", {}).get(key)
        access = Access(bool(grant and grant["read"]), bool(grant and grant["edit"]))
        assigned = {
            a["PermissionSetId"]
            for a in self.records.get("PermissionSetAssignment", {}).values()
            if a.get("AssigneeId") == self.api_user_id
        }
        for perm in self.records.get("FieldPermissions", {}).values():
            if perm.get("ParentId") in assigned and str(perm.get("Field", "")).lower() == key:
                access.read = access.read or bool(perm.get("PermissionsRead"))
                access.edit = access.edit or bool(perm.get("PermissionsEdit"))
        return access

    def visible(self, sobject: str, name: str) -> FieldDef | None:
        definition = self.find_field(sobject, name)
        if definition is None or not self.access(sobject, definition).read:
            return None
        return definition

    def visible_fields(self, sobject: str) -> list[FieldDef]:
        names = [*self._standard.get(sobject, {}), *self.custom_fields(sobject)]
        return [d for n in names if (d := self.visible(sobject, n)) is not None]

    def required_fields(self, sobject: str) -> list[str]:
        return [f.name for f in self._standard.get(sobject, {}).values() if f.required]

    def relationship(self, sobject: str, name: str) -> FieldDef | None:
        """The lookup field whose relationship is ``name`` (``Contact`` → ``ContactId``)."""
        return next(
            (f for f in self._standard.get(sobject, {}).values() if f.relationship == name), None
        )

    def external_ids(self, sobject: str) -> list[FieldDef]:
        return [f for f in self.visible_fields(sobject) if f.external_id]
