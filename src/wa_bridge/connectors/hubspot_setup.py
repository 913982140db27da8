"""Create the HubSpot custom properties the connector writes (``wa-bridge crm setup``).

:func:`required_properties` says, without I/O, which ``wa_*`` properties the HubSpot
connector sends for a mapping (the same naming rules as :mod:`.hubspot`);
:func:`ensure_properties` reads each one from the portal and creates the missing ones
(``type: string``, ``fieldType: text``, in the ``wa_bridge`` property group, created first
when absent). The id properties get ``hasUniqueValue: true``. Existing properties are never
changed: one whose uniqueness is wrong is reported as a problem saying what to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import httpx

from wa_bridge.connectors.http import send
from wa_bridge.connectors.hubspot import (
    CONTACT_PROPERTIES,
    HubSpotOptions,
    consent_property_prefix,
    custom_property,
    outcome_property,
)
from wa_bridge.errors import CrmRejected
from wa_bridge.mapping import CompiledMapping
from wa_bridge.operations import FieldValue

__all__ = [
    "GROUP_LABEL",
    "GROUP_NAME",
    "PropertyOutcome",
    "PropertySpec",
    "SetupReport",
    "ensure_properties",
    "required_properties",
]

GROUP_NAME: Final = "wa_bridge"
GROUP_LABEL: Final = "WhatsApp (wa-bridge)"
Status = Literal["created", "exists", "missing", "problem"]


@dataclass(frozen=True, slots=True)
class PropertySpec:
    """One custom property the connector writes on one object type."""

    name: str
    label: str
    unique: bool = False

    def create_body(self) -> dict[str, object]:
        """HubSpot's ``PropertyCreate`` body (values are strings, so a text property)."""
        body: dict[str, object] = {
            "name": self.name,
            "label": self.label,
            "type": "string",
            "fieldType": "text",
            "groupName": GROUP_NAME,
            "description": "Written by wa-bridge from WhatsApp events.",
        }
        if self.unique:
            body["hasUniqueValue"] = True
        return body


@dataclass(frozen=True, slots=True)
class PropertyOutcome:
    object_type: str
    name: str
    status: Status
    detail: str = ""

    def line(self) -> str:
        text = f"{self.object_type}.{self.name}: {self.status}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True, slots=True)
class SetupReport:
    outcomes: tuple[PropertyOutcome, ...]

    def by_status(self, status: Status) -> list[PropertyOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        return not self.by_status("problem")


def _label(name: str) -> str:
    words = name.removeprefix("wa_").replace("_", " ")
    return f"WhatsApp {words}"


def _contact_names(fields: Mapping[str, FieldValue]) -> list[str]:
    return [CONTACT_PROPERTIES.get(name, custom_property(name)) for name in fields]


def _consent_names(fields: Mapping[str, FieldValue]) -> list[str]:
    prefix = consent_property_prefix(fields.get("channel"), fields.get("purpose"))
    extra = [f"{prefix}_at"] if "occurred_at" in fields else []
    return [prefix, *extra, *([f"{prefix}_evidence"] if "evidence" in fields else [])]


def _case_names(fields: Mapping[str, FieldValue]) -> list[str]:
    names = ["wa_contact_key"]
    for name in fields:
        if name == "status":
            names.append("wa_status")
        elif name != "subject":
            names.append(custom_property(name))
    return names


def _note_names(fields: Mapping[str, FieldValue]) -> list[str]:
    names = ["wa_contact_key", "wa_case_key_ref"]
    for name in fields:
        if name == "occurred_at":
            if "status" in fields:
                names.append("wa_status_at")  # a status-only note keeps its own time there
        elif name != "body":
            names.append(custom_property(name))
    return names


def required_properties(
    mapping: CompiledMapping, options: HubSpotOptions | None = None
) -> dict[str, list[PropertySpec]]:
    """Object type → the custom properties the connector writes for ``mapping``.

    HubSpot's own properties (``hs_*``, ``phone``, ``subject`` …) are left out. Pure.
    """
    o = options or HubSpotOptions()
    notes = o.note_object
    wanted: dict[str, dict[str, bool]] = {"contacts": {}, "tickets": {}, notes: {}}
    outcome_names = [
        outcome_property(name) for name in mapping.operation_fields().get("record_outcome", {})
    ]
    per_kind: dict[str, list[tuple[str, list[str]]]] = {
        "upsert_contact": [("contacts", [])],
        "set_consent": [("contacts", [])],
        "upsert_case": [("tickets", [])],
        # on the ticket, or on the contact when the operation names no case
        "record_outcome": [("tickets", outcome_names), ("contacts", outcome_names)],
        "add_note": [(notes, [])],
    }
    namers = {
        "upsert_contact": _contact_names,
        "set_consent": _consent_names,
        "upsert_case": _case_names,
        "add_note": _note_names,
    }
    found: list[tuple[str, str, bool]] = [
        ("contacts", o.contact_id_property, True),
        ("tickets", o.case_id_property, True),
        (notes, o.note_id_property, True),
    ]
    for kind, fields in mapping.operation_fields().items():
        namer = namers.get(kind)
        for object_type, names in per_kind[kind]:
            for name in namer(fields) if namer else names:
                found.append((object_type, name, False))
    for object_type, name, unique in found:
        if name.startswith("wa_"):  # else a HubSpot property (or the portal's own)
            known = wanted[object_type]
            known[name] = known.get(name, False) or unique
    return {
        object_type: [PropertySpec(n, _label(n), u) for n, u in sorted(names.items())]
        for object_type, names in wanted.items()
    }


def _paths(options: HubSpotOptions) -> str:
    if options.api_style == "v3":
        return "/crm/v3/properties"
    return f"/crm/properties/{options.api_style}"


async def _get(client: httpx.AsyncClient, url: str, action: str) -> dict[str, object] | None:
    """The JSON object at ``url``, or None on 404."""
    try:
        response = await send(client, "GET", url, vendor="hubspot", action=action)
    except CrmRejected as exc:
        if exc.status_code == 404:
            return None
        raise
    body = response.json()
    return body if isinstance(body, dict) else {}


def _conflict(object_type: str, spec: PropertySpec, existing: Mapping[str, object]) -> str | None:
    unique = bool(existing.get("hasUniqueValue", False))
    if spec.unique and not unique:
        return (
            f"exists without hasUniqueValue, so it cannot be an idProperty; HubSpot cannot "
            f"change that: archive {spec.name} in Settings > Properties ({object_type}) and "
            f"run setup again, or configure another unique property"
        )
    if unique and not spec.unique:
        return (
            f"exists with hasUniqueValue, but several {object_type} records share a value; "
            f"archive {spec.name} in Settings > Properties ({object_type}) and run setup again"
        )
    return None


async def ensure_properties(
    client: httpx.AsyncClient,
    options: HubSpotOptions | None,
    specs: Mapping[str, Sequence[PropertySpec]],
    *,
    dry_run: bool = False,
) -> SetupReport:
    """Create the missing properties of ``specs`` (and their group); change nothing else.

    Each property is read first (``GET …/properties/{type}/{name}``); a missing one is
    created, or reported as ``missing`` with ``dry_run``. Raises :mod:`wa_bridge.errors`
    errors for a failing portal (bad token, unreachable); conflicts are report lines.
    """
    base = _paths(options or HubSpotOptions())
    outcomes: list[PropertyOutcome] = []
    for object_type, properties in specs.items():
        group_checked = False
        for spec in properties:
            existing = await _get(
                client, f"{base}/{object_type}/{spec.name}", f"read property {spec.name}"
            )
            if existing is not None:
                problem = _conflict(object_type, spec, existing)
                status: Status = "problem" if problem else "exists"
                outcomes.append(PropertyOutcome(object_type, spec.name, status, problem or ""))
                continue
            if dry_run:
                detail = "unique, would create" if spec.unique else "would create"
                outcomes.append(PropertyOutcome(object_type, spec.name, "missing", detail))
                continue
            if not group_checked:
                await _ensure_group(client, f"{base}/{object_type}/groups")
                group_checked = True
            await send(
                client,
                "POST",
                f"{base}/{object_type}",
                vendor="hubspot",
                action=f"create property {spec.name}",
                json=spec.create_body(),
            )
            detail = "hasUniqueValue" if spec.unique else ""
            outcomes.append(PropertyOutcome(object_type, spec.name, "created", detail))
    return SetupReport(tuple(outcomes))


async def _ensure_group(client: httpx.AsyncClient, url: str) -> None:
    if await _get(client, f"{url}/{GROUP_NAME}", "read property group") is not None:
        return
    await send(
        client,
        "POST",
        url,
        vendor="hubspot",
        action="create property group",
        json={"name": GROUP_NAME, "label": GROUP_LABEL},
    )
