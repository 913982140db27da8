"""``wa-bridge crm show``: the built-in SQL CRM's contacts with their cases and last notes.
``wa-bridge crm setup``: create the custom properties the HubSpot connector writes.

This is the operator looking at their own CRM, so it shows full data (it is not a log).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import typer
from sqlalchemy import select

from wa_bridge.cli._common import settings_or_exit
from wa_bridge.connectors.hubspot_setup import SetupReport
from wa_bridge.errors import ConfigError, WaBridgeError
from wa_bridge.settings import Settings
from wa_bridge.store import open_store, resolve_database_url
from wa_bridge.store.tables import crm_cases, crm_contacts, crm_notes

__all__ = ["load_crm_view", "register"]

DATA_DIR = Path(".wa-bridge")
crm_app = typer.Typer(help="The CRM: the built-in SQL CRM, and setup.", no_args_is_help=True)


async def load_crm_view(
    url: str, *, contact_key: str | None = None, limit: int = 20, notes: int = 5
) -> list[dict[str, Any]]:
    """Contacts (newest first) with their cases and last ``notes`` notes, as plain dicts."""
    store = await open_store(url, create=url.startswith("sqlite"))
    try:
        async with store.engine.connect() as conn:
            stmt = select(crm_contacts).order_by(crm_contacts.c.updated_at.desc()).limit(limit)
            if contact_key is not None:
                stmt = stmt.where(crm_contacts.c.contact_key == contact_key)
            out = [_plain(r) for r in (await conn.execute(stmt)).mappings()]
            for contact in out:
                key = contact["contact_key"]
                cases = await conn.execute(
                    select(crm_cases)
                    .where(crm_cases.c.contact_key == key)
                    .order_by(crm_cases.c.opened_at.desc())
                )
                contact["cases"] = [_plain(r) for r in cases.mappings()]
                last = await conn.execute(
                    select(crm_notes)
                    .where(crm_notes.c.contact_key == key)
                    .order_by(crm_notes.c.occurred_at.desc())
                    .limit(notes)
                )
                contact["notes"] = [_plain(r) for r in last.mappings()]
        return out
    finally:
        await store.aclose()


def _plain(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in row.items()}


def _text(contacts: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for c in contacts:
        who = " ".join(str(v) for v in (c["name"], c["phone_e164"], c["bsuid"], c["country"]) if v)
        lines.append(f"{c['contact_key']}  {who}")
        for case in c["cases"]:
            opened = case["opened_at"].isoformat() if case["opened_at"] else "-"
            lines.append(
                f"  case {case['case_key']}  {case['status'] or '-'}  opened {opened}"
                f"  agent {case['agent'] or '-'}"
            )
        for note in c["notes"]:
            at = note["occurred_at"].isoformat() if note["occurred_at"] else "-"
            body = (note["body"] or "").replace("\n", " ")[:80]
            lines.append(
                f"    {at}  {note['direction'] or '-':8} {note['status'] or '-':9} "
                f"{note['message_type'] or '-':8} {body}"
            )
    return "\n".join(lines) if lines else "no contacts"


@crm_app.command("show")
def show_cmd(
    contact: str | None = typer.Option(None, "--contact", help="Only this contact key."),
    limit: int = typer.Option(20, "--limit", min=1, help="At most this many contacts."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print contacts with their cases and last notes from the SQL CRM."""
    configured = settings_or_exit().database_url
    if configured is None:
        DATA_DIR.mkdir(exist_ok=True)
    url = resolve_database_url(configured, DATA_DIR)
    try:
        contacts = asyncio.run(load_crm_view(url, contact_key=contact, limit=limit))
    except WaBridgeError as exc:
        typer.echo(f"wa-bridge: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    if as_json:
        typer.echo(
            orjson.dumps(
                contacts, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
            ).decode()
        )
    else:
        typer.echo(_text(contacts))


SALESFORCE_FIELDS = (
    "Contact.WA_Contact_Key__c (Text, External ID, Unique)",
    "Case.WA_Case_Key__c (Text, External ID, Unique)",
    "Task.WA_Note_Key__c (Text, External ID, Unique)",
)


async def _hubspot_setup(settings: Settings, dry_run: bool) -> SetupReport:
    from wa_bridge.connectors.http import build_client
    from wa_bridge.connectors.hubspot import HubSpotOptions
    from wa_bridge.connectors.hubspot_setup import ensure_properties, required_properties
    from wa_bridge.mapping import load_mapping
    from wa_bridge.resources import resolve_mappings_path

    if not settings.crm_base_url:
        raise ConfigError("WA_BRIDGE_CRM_BASE_URL is required for connector hubspot")
    mapping = load_mapping(resolve_mappings_path(settings.mappings_path))
    options = HubSpotOptions(
        api_style=settings.hubspot_api_style, note_object=settings.hubspot_note_object
    )
    token = settings.crm_token.get_secret_value() if settings.crm_token else None
    client = build_client(
        settings.crm_base_url, token=token, timeout_s=settings.crm_timeout_s, vendor="hubspot"
    )
    async with client:
        specs = required_properties(mapping, options)
        return await ensure_properties(client, options, specs, dry_run=dry_run)


@crm_app.command("setup")
def setup_cmd(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only report; create nothing."),
) -> None:
    """Create the CRM properties the connector writes (HubSpot); exit 1 on a problem."""
    settings = settings_or_exit()
    if settings.connector in ("sql", "rest"):
        typer.echo(f"connector {settings.connector}: nothing to set up")
        return
    if settings.connector == "salesforce":
        typer.echo(
            "connector salesforce: create these external-id fields in Setup > Object Manager:"
        )
        for line in SALESFORCE_FIELDS:
            typer.echo(f"  {line}")
        return
    try:
        report = asyncio.run(_hubspot_setup(settings, dry_run))
    except WaBridgeError as exc:
        typer.echo(f"wa-bridge: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    for outcome in report.outcomes:
        typer.echo(outcome.line())
    counts = {s: len(report.by_status(s)) for s in ("created", "exists", "missing", "problem")}
    typer.echo(", ".join(f"{n} {s}" for s, n in counts.items()))
    if not report.ok:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.add_typer(crm_app, name="crm")
