"""``wa-bridge crm show``: the built-in SQL CRM's contacts (with their first touch and
consent state), their cases (status, outcome, CSAT, service figures), deals and last notes.
``wa-bridge crm setup``: prepare the configured CRM for its connector (each connector's
package says what that means, e.g. the custom properties it writes).

This is the operator looking at their own CRM, so it shows full data (it is not a log).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson
import typer
from sqlalchemy import select

from wa_bridge.cli._common import exit_with, require_state_database, settings_or_exit
from wa_bridge.connectors import SetupResult, set_up_crm
from wa_bridge.errors import CrmRejected, WaBridgeError
from wa_bridge.log import configure_logging
from wa_bridge.settings import Settings
from wa_bridge.store import open_store
from wa_bridge.store.db import state_database_url
from wa_bridge.store.tables import crm_cases, crm_consents, crm_contacts, crm_deals, crm_notes

__all__ = ["load_crm_view", "register", "run_setup"]

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
                contact["first_touch"] = _first_touch(contact.get("attributes"))
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
                deals = await conn.execute(
                    select(crm_deals)
                    .where(crm_deals.c.contact_key == key)
                    .order_by(crm_deals.c.created_at.desc())
                )
                contact["deals"] = [_plain(r) for r in deals.mappings()]
                contact["consent"] = await _consent_state(conn, key)
        return out
    finally:
        await store.aclose()


async def _consent_state(conn: Any, key: str) -> dict[str, dict[str, Any]]:
    """``channel:purpose`` → the latest consent the CRM was given (status, time, evidence)."""
    rows = await conn.execute(
        select(crm_consents)
        .where(crm_consents.c.contact_key == key)
        .order_by(crm_consents.c.occurred_at, crm_consents.c.consent_key)
    )
    state: dict[str, dict[str, Any]] = {}
    for row in rows.mappings():
        state[f"{row['channel']}:{row['purpose']}"] = {
            "status": row["status"],
            "at": row["occurred_at"],
            "evidence": row["evidence"],
        }
    return state


def _plain(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in row.items()}


_TOUCH_PREFIX = "first_touch_"


def _first_touch(attributes: Any) -> dict[str, Any] | None:
    """The contact's first touch (the mapping's ``first_touch_*`` fields), as one object."""
    if not isinstance(attributes, dict):
        return None
    touch = {
        k.removeprefix(_TOUCH_PREFIX): v
        for k, v in attributes.items()
        if k.startswith(_TOUCH_PREFIX)
    }
    return touch or None


def _text(contacts: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for c in contacts:
        who = " ".join(str(v) for v in (c["name"], c["phone_e164"], c["bsuid"], c["country"]) if v)
        lines.append(f"{c['contact_key']}  {who}")
        touch = c.get("first_touch") or {}
        if touch:
            source = touch.get("utm_source") or touch.get("source_type") or touch.get("origin")
            campaign = touch.get("utm_campaign") or touch.get("source_id") or "-"
            lines.append(f"  first touch {touch.get('at') or '-'}  {source or '-'}  {campaign}")
        for case in c["cases"]:
            opened = case["opened_at"].isoformat() if case["opened_at"] else "-"
            lines.append(
                f"  case {case['case_key']}  {case['status'] or '-'}  opened {opened}"
                f"  {case.get('channel') or '-'}  agent {case['agent'] or '-'}"
            )
            lines.append(f"    {_figures(case)}")
        for deal in c.get("deals") or []:
            amount = f"{deal['amount']} {deal['currency'] or ''}".rstrip()
            lines.append(
                f"  deal {deal['deal_key']}  {deal['stage'] or '-'}  {amount}"
                f"  {deal['source'] or '-'}  {deal['name'] or '-'}"
            )
        for scope, consent in (c.get("consent") or {}).items():
            lines.append(f"  consent {scope}  {consent['status']}  since {consent['at']}")
        for note in c["notes"]:
            at = note["occurred_at"].isoformat() if note["occurred_at"] else "-"
            body = (note["body"] or "").replace("\n", " ")[:80]
            lines.append(
                f"    {at}  {note['direction'] or '-':8} {note['status'] or '-':9} "
                f"{note['message_type'] or '-':8} {body}"
            )
    return "\n".join(lines) if lines else "no contacts"


def _figures(case: Mapping[str, Any]) -> str:
    """Outcome, value, CSAT and service figures of a case, as one line."""
    value = case.get("outcome_value")
    amount = f" {value} {case.get('outcome_currency') or ''}".rstrip() if value is not None else ""
    resolved_first = case.get("fcr")
    fcr = "-" if resolved_first is None else ("yes" if resolved_first else "no")
    return (
        f"outcome {case.get('outcome') or '-'}{amount}  csat {case.get('csat') or '-'}"
        f"  frt {_seconds(case.get('frt_s'))}  handling {_seconds(case.get('handling_s'))}"
        f"  fcr {fcr}"
    )


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{value}s"


@crm_app.command("show")
def show_cmd(
    contact: str | None = typer.Option(None, "--contact", help="Only this contact key."),
    limit: int = typer.Option(20, "--limit", min=1, help="At most this many contacts."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print contacts with their cases and last notes from the SQL CRM."""
    settings = settings_or_exit()
    require_state_database(settings)  # not an empty database here, and "no contacts"
    url = state_database_url(settings.database_url)
    try:
        contacts = asyncio.run(load_crm_view(url, contact_key=contact, limit=limit))
    except WaBridgeError as exc:
        raise exit_with(f"wa-bridge: {exc}", 1) from exc
    if as_json:
        typer.echo(
            orjson.dumps(
                contacts, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
            ).decode()
        )
    else:
        typer.echo(_text(contacts))


async def run_setup(settings: Settings, url: str, *, dry_run: bool) -> SetupResult:
    """``set_up_crm`` with the state store at ``url`` open, so setup's requests wait for
    the CRM's quota like the workers' do (and tell them of any rate limit it meets)."""
    store = await open_store(url, create=url.startswith("sqlite"))
    try:
        return await set_up_crm(settings, dry_run=dry_run, engine=store.engine)
    finally:
        await store.aclose()


@crm_app.command("setup")
def setup_cmd(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only report; create nothing."),
) -> None:
    """Create what the CRM needs for the connector (e.g. its properties); exit 1 on a problem."""
    settings = settings_or_exit()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    try:
        result = asyncio.run(
            run_setup(settings, state_database_url(settings.database_url), dry_run=dry_run)
        )
    except WaBridgeError as exc:
        typer.echo(f"wa-bridge: {exc}", err=True)
        if isinstance(exc, CrmRejected):
            typer.echo(f"wa-bridge: the CRM said: {exc.crm_error}", err=True)
        raise typer.Exit(code=1) from exc
    for line in result.lines:
        typer.echo(line)
    if not result.ok:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.add_typer(crm_app, name="crm")
