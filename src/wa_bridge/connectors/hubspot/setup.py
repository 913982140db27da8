"""Create the HubSpot custom properties the connector writes (``wa-bridge crm setup``).

:func:`required_properties` says, without I/O, which ``wa_*`` properties the HubSpot
connector sends for a mapping (the names of :mod:`.properties`, which the connector writes);
:func:`ensure_properties` lists each object type's properties (one read per type) and
creates the missing ones (``type: string``, ``fieldType: text``) in the ``wa_bridge``
property group, which it creates first (HubSpot refuses a property in a group that does
not exist). The id properties get ``hasUniqueValue: true``. Existing properties are never
changed: one whose uniqueness is wrong is reported as a problem saying what to do; a
property HubSpot refuses to create is a problem line with HubSpot's own message.

Requests back off on a rate limit (``Retry-After``) through the portal's gate, shared with
the workers, so a dry run and a real run in a row, or setup beside a running worker, finish.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import httpx

from wa_bridge.clock import SYSTEM_CLOCK, Clock
from wa_bridge.connectors._setup import Outcome, SetupReport, Status, send_patiently
from wa_bridge.connectors.base import SetupResult
from wa_bridge.connectors.hubspot import properties as naming
from wa_bridge.connectors.hubspot.auth import hubspot_client
from wa_bridge.connectors.hubspot.dialect import HUBSPOT_ERRORS
from wa_bridge.connectors.hubspot.properties import HubSpotOptions
from wa_bridge.errors import CrmRejected
from wa_bridge.mapping import CompiledMapping, load_mapping
from wa_bridge.operations import FieldValue, OperationKind
from wa_bridge.resources import resolve_mappings_path

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

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
# The report's shapes are shared by every CRM's setup.
PropertyOutcome = Outcome


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
    if kind == "upsert_deal":
        refs = (naming.CONTACT_KEY_REF, naming.CASE_KEY_REF)
        deal = [*refs, *map(naming.deal_property, fields)]
        return [("deals", name) for name in deal] if options.deals else []
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
    if o.deals:
        wanted["deals"] = {}
        found.append(("deals", o.deal_id_property, True))
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


async def _get(
    client: httpx.AsyncClient, url: str, action: str, clock: Clock
) -> dict[str, Any] | None:
    """The JSON object at ``url``, or None on 404."""
    try:
        response = await send_patiently(
            client, "GET", url, dialect=HUBSPOT_ERRORS, action=action, clock=clock
        )
    except CrmRejected as exc:
        if exc.status_code == 404:
            return None
        raise
    body = response.json()
    return body if isinstance(body, dict) else {}


async def _existing(
    client: httpx.AsyncClient, url: str, object_type: str, clock: Clock
) -> dict[str, dict[str, Any]]:
    """The portal's properties of ``object_type`` by name (one read)."""
    body = await _get(client, url, f"list {object_type} properties", clock) or {}
    results = body.get("results")
    found = results if isinstance(results, list) else []
    return {str(p["name"]): p for p in found if isinstance(p, dict) and p.get("name")}


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
    clock: Clock = SYSTEM_CLOCK,
) -> SetupReport:
    """Create the missing properties of ``specs`` (their group first); change nothing else.

    Each object type's properties are listed once; a missing one is created, or reported
    as ``missing`` with ``dry_run``. Raises :mod:`wa_bridge.errors` errors for a failing
    portal (bad token, unreachable, daily budget spent); conflicts and refused creations
    are report lines.
    """
    base = _paths(options or HubSpotOptions())
    outcomes: list[Outcome] = []
    notes: list[str] = []
    for object_type, properties in specs.items():
        existing = await _existing(client, f"{base}/{object_type}", object_type, clock)
        missing = [spec for spec in properties if spec.name not in existing]
        if missing:
            note = await _ensure_group(client, f"{base}/{object_type}/groups", dry_run, clock)
            notes.append(f"{object_type}: property group {GROUP_NAME} {note}")
        for spec in properties:
            if spec.name in existing:
                problem = _conflict(object_type, spec, existing[spec.name])
                status: Status = "problem" if problem else "exists"
                outcomes.append(Outcome(object_type, spec.name, status, problem or ""))
            elif dry_run:
                detail = "unique, would create" if spec.unique else "would create"
                outcomes.append(Outcome(object_type, spec.name, "missing", detail))
            else:
                outcomes.append(await _create(client, base, object_type, spec, clock))
    return SetupReport(tuple(outcomes), tuple(notes))


async def _create(
    client: httpx.AsyncClient, base: str, object_type: str, spec: PropertySpec, clock: Clock
) -> Outcome:
    """Create ``spec``; a refusal (other than the token's) is a problem line."""
    url = f"{base}/{object_type}"
    try:
        await send_patiently(
            client,
            "POST",
            url,
            dialect=HUBSPOT_ERRORS,
            action=f"create property {spec.name}",
            json=spec.create_body(),
            clock=clock,
        )
    except CrmRejected as exc:
        if exc.status_code in (401, 403):
            raise  # the token: nothing else will work either
        return Outcome(object_type, spec.name, "problem", f"HubSpot refused: {exc.crm_error}")
    return Outcome(object_type, spec.name, "created", "hasUniqueValue" if spec.unique else "")


async def set_up(settings: Settings, dry_run: bool, engine: AsyncEngine | None) -> SetupResult:
    """Create the properties the configured mapping makes the connector write (or, with
    ``dry_run``, only report the missing ones)."""
    options = HubSpotOptions.from_settings(settings)
    mapping = load_mapping(resolve_mappings_path(settings.mappings_path))
    specs = required_properties(mapping, options)
    async with hubspot_client(settings, engine) as client:
        report = await ensure_properties(client, options, specs, dry_run=dry_run)
    return report.result()


async def _ensure_group(client: httpx.AsyncClient, url: str, dry_run: bool, clock: Clock) -> str:
    """Create the ``wa_bridge`` group at ``url`` unless it exists; what happened."""
    if await _get(client, f"{url}/{GROUP_NAME}", "read property group", clock) is not None:
        return "exists"
    if dry_run:
        return "missing (would create)"
    await send_patiently(
        client,
        "POST",
        url,
        dialect=HUBSPOT_ERRORS,
        action="create property group",
        json={"name": GROUP_NAME, "label": GROUP_LABEL},
        clock=clock,
    )
    return "created"
