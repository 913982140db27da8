"""What a HubSpot portal knows before anyone configures it: object types, HubSpot's own
properties, default groups and pipelines, association type ids, and request schemas.

Facts from /work/shared/fixtures/CRM.md and HubSpot's docs (association type ids: the
"Association type ID values" table of the v4 associations guide). The request schemas
relax the spec's over-declared ``required`` lists (CRM.md, "Spec quirks").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from jsonschema import Draft202012Validator

PropertyType = Literal[
    "string", "number", "bool", "enumeration", "date", "datetime", "phone_number"
]

OBJECT_TYPES = {
    "contacts": "contacts",
    "contact": "contacts",
    "0-1": "contacts",
    "deals": "deals",
    "deal": "deals",
    "0-3": "deals",
    "tickets": "tickets",
    "ticket": "tickets",
    "0-5": "tickets",
    "communications": "communications",
    "communication": "communications",
    "0-18": "communications",
    "notes": "notes",
    "note": "notes",
    "0-46": "notes",
}
TYPE_IDS = {"contacts": "0-1", "deals": "0-3", "tickets": "0-5", "communications": "0-18"}
TYPE_IDS["notes"] = "0-46"

DEFAULT_GROUPS = {
    "contacts": "contactinformation",
    "deals": "dealinformation",
    "tickets": "ticketinformation",
    "communications": "communicationinformation",
    "notes": "engagement",
}

# Unique properties a pre-provisioned portal has (strict_properties off), per object type.
IMPLICIT_UNIQUE = {
    "contacts": {"wa_contact_key"},
    "deals": {"wa_deal_key"},
    "tickets": {"wa_case_key"},
    "communications": {"wa_note_key"},
    "notes": {"wa_note_key"},
}
REQUIRED_ON_CREATE = {
    "deals": ("dealname", "dealstage"),
    "tickets": ("subject", "hs_pipeline_stage"),
    "notes": ("hs_timestamp",),
}
# Pipeline property and stage property, for objects with pipelines.
PIPELINE_PROPERTIES = {
    "deals": ("pipeline", "dealstage"),
    "tickets": ("hs_pipeline", "hs_pipeline_stage"),
}
DEFAULT_PIPELINE = {"deals": "default", "tickets": "0"}


@dataclass(frozen=True)
class PropertyDef:
    name: str
    type: PropertyType = "string"
    field_type: str = "text"
    group: str = ""
    options: tuple[str, ...] | None = None  # None: any value (or checked elsewhere)
    read_only: bool = False
    unique: bool = False
    hubspot_defined: bool = True
    calculated: bool = False
    label: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def describe(self) -> dict[str, Any]:
        """The property as ``GET /crm/v3/properties/{type}/{name}`` answers it."""
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": self.group,
            "description": "",
            "options": [
                {"label": o, "value": o, "hidden": False, "displayOrder": i}
                for i, o in enumerate(self.options or ())
            ],
            "hasUniqueValue": self.unique,
            "calculated": self.calculated,
            "hidden": False,
            "formField": not self.read_only,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "archived": False,
        }
        if self.hubspot_defined:
            body["hubspotDefined"] = True
        body.update(self.extra)
        return body


def _std(group: str, *defs: PropertyDef) -> dict[str, PropertyDef]:
    out = {}
    for d in defs:
        out[d.name] = PropertyDef(
            d.name,
            d.type,
            d.field_type,
            group,
            d.options,
            d.read_only,
            d.unique,
            True,
            d.calculated,
        )
    return out


def _ro(name: str, type_: PropertyType = "datetime", *, calculated: bool = False) -> PropertyDef:
    field_type = "text" if type_ == "string" else "number" if type_ == "number" else "date"
    return PropertyDef(name, type_, field_type, read_only=True, calculated=calculated)


_COMMON = (
    PropertyDef("createdate", "datetime", "date"),
    _ro("lastmodifieddate"),
    _ro("hs_lastmodifieddate"),
    _ro("hs_object_id", "number"),
    PropertyDef("hubspot_owner_id", "enumeration", "select"),
)
STANDARD_PROPERTIES: dict[str, dict[str, PropertyDef]] = {
    "contacts": _std(
        DEFAULT_GROUPS["contacts"],
        *_COMMON,
        PropertyDef("email", unique=True),
        PropertyDef("phone", field_type="phonenumber"),
        PropertyDef("mobilephone", field_type="phonenumber"),
        PropertyDef("hs_whatsapp_phone_number", field_type="phonenumber"),
        PropertyDef("firstname"),
        PropertyDef("lastname"),
        PropertyDef("country"),
        PropertyDef("city"),
        PropertyDef("company"),
        PropertyDef("jobtitle"),
        PropertyDef(
            "lifecyclestage",
            "enumeration",
            "radio",
            options=(
                "subscriber",
                "lead",
                "marketingqualifiedlead",
                "salesqualifiedlead",
                "opportunity",
                "customer",
                "evangelist",
                "other",
            ),
        ),
        PropertyDef("hs_lead_status", "enumeration", "radio"),
        _ro("hs_searchable_calculated_phone_number", "string", calculated=True),
        _ro("hs_searchable_calculated_mobile_number", "string", calculated=True),
        PropertyDef("hs_merged_object_ids", "enumeration", "checkbox", read_only=True),
    ),
    "deals": _std(
        DEFAULT_GROUPS["deals"],
        *_COMMON,
        PropertyDef("dealname"),
        PropertyDef("dealstage", "enumeration", "radio"),
        PropertyDef("pipeline", "enumeration", "select"),
        PropertyDef("amount", "number", "number"),
        PropertyDef("deal_currency_code", "enumeration", "select"),
        PropertyDef("closedate", "datetime", "date"),
        PropertyDef(
            "dealtype", "enumeration", "radio", options=("newbusiness", "existingbusiness")
        ),
        PropertyDef("description", field_type="textarea"),
    ),
    "tickets": _std(
        DEFAULT_GROUPS["tickets"],
        *_COMMON,
        PropertyDef("subject"),
        PropertyDef("content", field_type="textarea"),
        PropertyDef("hs_pipeline", "enumeration", "select"),
        PropertyDef("hs_pipeline_stage", "enumeration", "radio"),
        PropertyDef(
            "hs_ticket_priority",
            "enumeration",
            "select",
            options=("LOW", "MEDIUM", "HIGH", "URGENT"),
        ),
        PropertyDef("hs_ticket_category", "enumeration", "checkbox"),
        PropertyDef("source_type", "enumeration", "select"),
        PropertyDef("closed_date", "datetime", "date"),
    ),
    "communications": _std(
        DEFAULT_GROUPS["communications"],
        *_COMMON,
        PropertyDef(
            "hs_communication_channel_type",
            "enumeration",
            "select",
            options=("SMS", "WHATS_APP", "LINKEDIN_MESSAGE"),
        ),
        PropertyDef("hs_communication_logged_from", "enumeration", "select", options=("CRM",)),
        PropertyDef("hs_communication_body", field_type="textarea"),
        PropertyDef("hs_timestamp", "datetime", "date"),
    ),
    "notes": _std(
        DEFAULT_GROUPS["notes"],
        *_COMMON,
        PropertyDef("hs_note_body", field_type="html"),
        PropertyDef("hs_timestamp", "datetime", "date"),
    ),
}
# Set by HubSpot on every write; reads and search return them by default.
TIMESTAMP_PROPERTIES = ("createdate", "lastmodifieddate", "hs_lastmodifieddate")
DEFAULT_SEARCH_PROPERTIES = {
    "contacts": (
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    ),
    "deals": ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate"),
    "tickets": ("content", "createdate", "hs_lastmodifieddate", "hs_pipeline", "subject"),
    "communications": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    "notes": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
}
PROPERTY_TYPES: dict[str, set[str]] = {
    "string": {"text", "textarea", "html", "phonenumber", "file"},
    "number": {"number"},
    "bool": {"booleancheckbox", "radio", "select"},
    "enumeration": {"checkbox", "radio", "select", "booleancheckbox"},
    "date": {"date"},
    "datetime": {"date"},
    "phone_number": {"phonenumber"},
}


def default_pipelines() -> dict[str, dict[str, dict[str, Any]]]:
    """A new portal's pipelines: object type → pipeline id → {label, stages: {id: label}}."""
    return {
        "deals": {
            "default": {
                "label": "Sales Pipeline",
                "stages": {
                    "appointmentscheduled": "Appointment Scheduled",
                    "qualifiedtobuy": "Qualified To Buy",
                    "presentationscheduled": "Presentation Scheduled",
                    "decisionmakerboughtin": "Decision Maker Bought-In",
                    "contractsent": "Contract Sent",
                    "closedwon": "Closed Won",
                    "closedlost": "Closed Lost",
                },
            }
        },
        "tickets": {
            "0": {
                "label": "Support Pipeline",
                "stages": {
                    "1": "New",
                    "2": "Waiting on contact",
                    "3": "Waiting on us",
                    "4": "Closed",
                },
            }
        },
    }


# HUBSPOT_DEFINED default (unlabelled) association type id, per (from, to).
ASSOCIATION_TYPES: dict[tuple[str, str], int] = {
    ("contacts", "deals"): 4,
    ("contacts", "tickets"): 15,
    ("contacts", "notes"): 201,
    ("contacts", "communications"): 82,
    ("deals", "contacts"): 3,
    ("deals", "tickets"): 27,
    ("deals", "notes"): 213,
    ("deals", "communications"): 86,
    ("tickets", "contacts"): 16,
    ("tickets", "deals"): 28,
    ("tickets", "notes"): 227,
    ("tickets", "communications"): 84,
    ("notes", "contacts"): 202,
    ("notes", "deals"): 214,
    ("notes", "tickets"): 228,
    ("communications", "contacts"): 81,
    ("communications", "deals"): 85,
    ("communications", "tickets"): 83,
}


# --- request schemas --------------------------------------------------------------------
def _v(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema)


_ID = {"type": ["string", "integer"], "minLength": 1}
_PROPS = {"type": "object", "additionalProperties": {"type": "string"}}
_ASSOC_TYPE = {
    "type": "object",
    "required": ["associationTypeId"],
    "additionalProperties": False,
    "properties": {
        "associationCategory": {"enum": ["HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED"]},
        "associationTypeId": {"type": "integer"},
    },
}
_INLINE_ASSOCIATIONS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["to", "types"],
        "additionalProperties": False,
        "properties": {
            "to": {
                "type": "object",
                "required": ["id"],
                "additionalProperties": False,
                "properties": {"id": _ID},
            },
            "types": {"type": "array", "minItems": 1, "items": _ASSOC_TYPE},
        },
    },
}
_CREATE_ITEM = {
    "type": "object",
    "required": ["properties"],
    "additionalProperties": False,
    "properties": {
        "properties": _PROPS,
        "associations": _INLINE_ASSOCIATIONS,
        "objectWriteTraceId": {"type": "string"},
    },
}


def _batch(item: dict[str, Any]) -> Draft202012Validator:
    return _v(
        {
            "type": "object",
            "required": ["inputs"],
            "additionalProperties": False,
            "properties": {
                "inputs": {"type": "array", "minItems": 1, "maxItems": 100, "items": item}
            },
        }
    )


CREATE = _v(_CREATE_ITEM)
BATCH_CREATE = _batch(_CREATE_ITEM)
UPDATE = _v(
    {
        "type": "object",
        "required": ["properties"],
        "additionalProperties": False,
        "properties": {"properties": _PROPS, "objectWriteTraceId": {"type": "string"}},
    }
)
BATCH_UPDATE = _batch(
    {
        "type": "object",
        "required": ["id", "properties"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "minLength": 1},
            "idProperty": {"type": "string", "minLength": 1},
            "properties": _PROPS,
            "objectWriteTraceId": {"type": "string"},
        },
    }
)
BATCH_UPSERT = _batch(
    {
        "type": "object",
        "required": ["id", "idProperty", "properties"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "minLength": 1},
            "idProperty": {"type": "string", "minLength": 1},
            "objectWriteTraceId": {"type": "string"},
            "properties": _PROPS,
        },
    }
)
BATCH_READ = _v(
    {
        "type": "object",
        "required": ["inputs", "properties"],
        "additionalProperties": False,
        "properties": {
            "idProperty": {"type": "string"},
            "properties": {"type": "array", "items": {"type": "string"}},
            "propertiesWithHistory": {"type": "array", "items": {"type": "string"}},
            "archived": {"type": "boolean"},
            "inputs": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "required": ["id"],
                    "additionalProperties": False,
                    "properties": {"id": {"type": "string", "minLength": 1}},
                },
            },
        },
    }
)
BATCH_IDS = _batch(
    {
        "type": "object",
        "required": ["id"],
        "additionalProperties": False,
        "properties": {"id": {"type": "string", "minLength": 1}},
    }
)
MERGE = _v(
    {
        "type": "object",
        "required": ["primaryObjectId", "objectIdToMerge"],
        "additionalProperties": False,
        "properties": {
            "primaryObjectId": {"type": "string", "minLength": 1},
            "objectIdToMerge": {"type": "string", "minLength": 1},
        },
    }
)
_END = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "string", "minLength": 1}},
}
ASSOC_DEFAULT = _batch(
    {
        "type": "object",
        "required": ["from", "to"],
        "additionalProperties": False,
        "properties": {"from": _END, "to": _END},
    }
)
ASSOC_CREATE = _batch(
    {
        "type": "object",
        "required": ["from", "to", "types"],
        "additionalProperties": False,
        "properties": {
            "from": _END,
            "to": _END,
            "types": {"type": "array", "minItems": 1, "items": _ASSOC_TYPE},
        },
    }
)
ASSOC_LABELLED_PUT = _v({"type": "array", "minItems": 1, "items": _ASSOC_TYPE})

OPERATORS = (
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
)
_SCALAR = {"type": ["string", "number", "boolean"]}
SEARCH = _v(
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "filterGroups": {
                "type": "array",
                "maxItems": 5,
                "items": {
                    "type": "object",
                    "required": ["filters"],
                    "additionalProperties": False,
                    "properties": {
                        "filters": {
                            "type": "array",
                            "maxItems": 10,
                            "items": {
                                "type": "object",
                                "required": ["propertyName", "operator"],
                                "additionalProperties": False,
                                "properties": {
                                    "propertyName": {"type": "string", "minLength": 1},
                                    "operator": {"enum": list(OPERATORS)},
                                    "value": _SCALAR,
                                    "highValue": _SCALAR,
                                    "values": {"type": "array", "minItems": 1, "items": _SCALAR},
                                },
                            },
                        }
                    },
                },
            },
            "sorts": {
                "type": "array",
                "maxItems": 1,
                "items": {
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {
                            "type": "object",
                            "required": ["propertyName"],
                            "additionalProperties": False,
                            "properties": {
                                "propertyName": {"type": "string", "minLength": 1},
                                "direction": {"enum": ["ASCENDING", "DESCENDING"]},
                            },
                        },
                    ]
                },
            },
            "query": {"type": "string"},
            "properties": {"type": "array", "items": {"type": "string"}},
            "limit": {"type": "integer", "minimum": 1, "maximum": 200},
            "after": {"type": ["string", "integer"]},
        },
    }
)
PROPERTY_CREATE = _v(
    {
        "type": "object",
        "required": ["name", "label", "type", "fieldType", "groupName"],
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "maxLength": 100},
            "label": {"type": "string", "minLength": 1},
            "type": {"enum": sorted(PROPERTY_TYPES)},
            "fieldType": {"type": "string"},
            "groupName": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "hasUniqueValue": {"type": "boolean"},
            "options": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["label", "value"],
                    "properties": {
                        "label": {"type": "string"},
                        "value": {"type": "string"},
                        "hidden": {"type": "boolean"},
                        "displayOrder": {"type": "integer"},
                        "description": {"type": "string"},
                    },
                },
            },
            "displayOrder": {"type": "integer"},
            "formField": {"type": "boolean"},
            "hidden": {"type": "boolean"},
        },
        "additionalProperties": False,
    }
)
GROUP_CREATE = _v(
    {
        "type": "object",
        "required": ["name", "label"],
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
            "label": {"type": "string", "minLength": 1},
            "displayOrder": {"type": "integer"},
        },
        "additionalProperties": False,
    }
)


def schema_errors(validator: Draft202012Validator, body: Any) -> list[str]:
    return [
        f"body{''.join(f'/{p}' for p in err.absolute_path)}: {err.message}"
        for err in validator.iter_errors(body)
    ]
