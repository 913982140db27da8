"""Create the HubSpot custom properties the connector writes (``wa-bridge crm setup``).

:func:`required_properties` says, without I/O, which ``wa_*`` properties the HubSpot
connector sends for a mapping (the names of :mod:`.properties`, which the connector writes);
:func:`ensure_properties` reads each one from the portal and creates the missing ones
(``type: string``, ``fieldType: text``, in the ``wa_bridge`` property group, created first
when absent). The id properties get ``hasUniqueValue: true``. Existing properties are never
changed: one whose uniqueness is wrong is reported as a problem saying what to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, get_args

import httpx

from wa_bridge.connectors.base import SetupResult
from wa_bridge.connectors.http import client_for, send
from wa_bridge.connectors.hubspot import properties as naming
from wa_bridge.connectors.hubspot.dialect import HUBSPOT_ERRORS
from wa_bridge.connectors.hubspot.properties import HubSpotOptions
from wa_bridge.errors import CrmRejected
from wa_bridge.mapping import CompiledMapping, load_mapping
from wa_bridge.operations import FieldValue, OperationKind
from wa_bridge.resources import resolve_mappings_path

if TYPE_CHECKING:
    from wa_bridge.settings import Settings

__all__ = [
    "GROUP_LABEL",
    "GROUP_NAME",
    "PropertyOutcome",
    "PropertySpec",
    "SetupReport",
    "ensure_properties",
    "required_properties",
    "set_up",
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

    def result(self) -> SetupResult:
        """One line per property, then the count of each status."""
        counts = {s: len(self.by_status(s)) for s in get_args(Status)}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items())
        return SetupResult((*(o.line() for o in self.outcomes), summary), ok=self.ok)


def _label(name: str) -> str:
    words = name.removeprefix("wa_").replace("_", " ")
    return f"WhatsApp {words}"


def _written(
    kind: OperationKind, fields: Mapping[str, FieldValue], options: HubSpotOptions
) -> list[tuple[str, str]]:
    """(object type, property) for each property the connector writes for ``kind``."""
    if kind == "upsert_contact":
        return [("contacts", naming.contact_property(name)) for name in fields]
    if kind == "set_consent":
        return [("contacts", name) for name in naming.consent_properties(fields)]
    if kind == "upsert_case":
        return [
            ("tickets", name)
            for name in (naming.CONTACT_KEY_REF, *map(naming.ticket_property, fields))
        ]
    if kind == "record_outcome":
        # on the ticket, or on the contact when the operation names no case
        names = [naming.outcome_property(name) for name in fields]
        return [(object_type, name) for object_type in ("tickets", "contacts") for name in names]
    # add_note: a status-only note keeps its own time apart, so both names when statuses come
    kinds = (False, True) if "status" in fields else (False,)
    names = [
        naming.note_property(name, is_status_only=is_status_only, options=options)
        for name in fields
        for is_status_only in kinds
    ]
    return [
        (options.note_object, name)
        for name in (naming.CONTACT_KEY_REF, naming.CASE_KEY_REF, *names)
    ]


def required_properties(
    mapping: CompiledMapping, options: HubSpotOptions | None = None
) -> dict[str, list[PropertySpec]]:
    """Object type → the custom properties the connector writes for ``mapping``.

    HubSpot's own properties (``hs_*``, ``phone``, ``subject`` …) are left out. Pure.
    """
    o = options or HubSpotOptions()
    wanted: dict[str, dict[str, bool]] = {"contacts": {}, "tickets": {}, o.note_object: {}}
    found: list[tuple[str, str, bool]] = [
        ("contacts", o.contact_id_property, True),
        ("tickets", o.case_id_property, True),
        (o.note_object, o.note_id_property, True),
    ]
    for kind, fields in mapping.operation_fields().items():
        found.extend((object_type, name, False) for object_type, name in _written(kind, fields, o))
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
        response = await send(client, "GET", url, dialect=HUBSPOT_ERRORS, action=action)
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
                dialect=HUBSPOT_ERRORS,
                action=f"create property {spec.name}",
                json=spec.create_body(),
            )
            detail = "hasUniqueValue" if spec.unique else ""
            outcomes.append(PropertyOutcome(object_type, spec.name, "created", detail))
    return SetupReport(tuple(outcomes))


async def set_up(settings: Settings, dry_run: bool) -> SetupResult:
    """Create the properties the configured mapping makes the connector write (or, with
    ``dry_run``, only report the missing ones)."""
    options = HubSpotOptions.from_settings(settings)
    async with client_for(settings, HUBSPOT_ERRORS) as client:
        mapping = load_mapping(resolve_mappings_path(settings.mappings_path))
        specs = required_properties(mapping, options)
        report = await ensure_properties(client, options, specs, dry_run=dry_run)
    return report.result()


async def _ensure_group(client: httpx.AsyncClient, url: str) -> None:
    if await _get(client, f"{url}/{GROUP_NAME}", "read property group") is not None:
        return
    await send(
        client,
        "POST",
        url,
        dialect=HUBSPOT_ERRORS,
        action="create property group",
        json={"name": GROUP_NAME, "label": GROUP_LABEL},
    )
