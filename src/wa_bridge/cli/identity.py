"""``wa-bridge identity report | adoptions | merge | unmerge | merges``: contacts that
are one person, and CRM records that hold one person twice.

Phones are masked and BSUIDs hidden (each with the keyed hash ``identity_events`` uses)
unless ``report --show-identifiers``, which the audit log records. Every command is
audited with ``--actor`` (default ``$USER``) as an operator, like ``wa-bridge dlq``.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer

from wa_bridge.cli._common import echo_rows, json_fields, settings_or_exit, with_store
from wa_bridge.errors import CrmRejected, WaBridgeError

if TYPE_CHECKING:
    from wa_bridge.ops.identity import MergeOutcome, UnmergeOutcome
    from wa_bridge.settings import Settings
    from wa_bridge.store.api import Store
    from wa_bridge.store.merges import MergeRow
    from wa_bridge.store.sql import SqlStore

__all__ = ["register"]

identity_app = typer.Typer(
    help="Contacts that look like one person: report, adoptions, merge, unmerge.",
    no_args_is_help=True,
)
Actor = Annotated[str | None, typer.Option("--actor", help="who acts (default $USER)")]
AsJson = Annotated[bool, typer.Option("--json")]
ROLE = "operator"
T = TypeVar("T")


def _who(actor: str | None) -> str:
    return actor or os.environ.get("USER") or getpass.getuser()


def _run(settings: Settings, work: Callable[[SqlStore], Awaitable[T]]) -> T:
    """Open the state store, run ``work`` on it; a refusal or CRM error exits 1."""
    from wa_bridge.store.sql import SqlStore

    def on_sql(store: Store) -> Awaitable[T]:
        assert isinstance(store, SqlStore)
        return work(store)

    try:
        return with_store(settings, on_sql)
    except WaBridgeError as exc:
        typer.echo(f"wa-bridge identity: {exc}", err=True)
        if isinstance(exc, CrmRejected):
            typer.echo(f"wa-bridge identity: the CRM said: {exc.crm_error}", err=True)
        raise typer.Exit(code=1) from exc


def _listed(
    find: Callable[..., Awaitable[list[T]]],
    data: Callable[..., dict[str, Any]],
    *,
    reveal: bool,
    limit: int,
    actor: str | None,
) -> list[dict[str, Any]]:
    """An audited listing (``find``) as the operator ``actor``, each row as ``data``."""
    settings = settings_or_exit()
    who = _who(actor)
    found = _run(
        settings, lambda store: find(store, actor=who, role=ROLE, reveal=reveal, limit=limit)
    )
    return [data(item, reveal=reveal) for item in found]


@identity_app.command()
def report(
    as_json: AsJson = False,
    show_identifiers: Annotated[
        bool,
        typer.Option("--show-identifiers", help="print phones and BSUIDs unmasked (audited)"),
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 200,
    actor: Actor = None,
) -> None:
    """List contacts that look like one person, with the evidence and the merge command."""
    from wa_bridge.ops.identity import lookalike_data
    from wa_bridge.ops.identity import report as find

    items = _listed(find, lookalike_data, reveal=show_identifiers, limit=limit, actor=actor)
    if as_json:
        for item in items:
            typer.echo(orjson.dumps(item).decode())
    else:
        for item in items:
            _print_pair(item)
    typer.echo(f"{len(items)} pair(s) that look like one person", err=True)


def _facts(contact: dict[str, Any]) -> str:
    created = (contact["created_at"] or "?")[:19]
    ids = len(contact["identifiers"])
    return f"{contact['contact_id']} ({ids} identifier(s), {contact['cases']} case(s), {created})"


def _print_pair(item: dict[str, Any]) -> None:
    typer.echo(f"keep  {_facts(item['keep'])}\nother {_facts(item['other'])}")
    for e in item["evidence"]:
        if e["rule"] == "moved":
            at = (e["at"] or "?")[:19]
            what = f"{e['count']} move(s) to keep, last {at}; ids {e['ids'] or '-'}"
        elif e["rule"] == "orphaned":
            what = f"{e['keep_value']}: other's once, keep's now; other holds no identifier"
        else:
            what = f"keep {e['keep_value']}, other {e['other_value']}"
        typer.echo(f"  {e['rule']:<14} {e['kind']:<12} {what}")
    typer.echo(f"  merge: {item['command']}\n")


@identity_app.command()
def adoptions(
    as_json: AsJson = False,
    show_identifiers: Annotated[
        bool, typer.Option("--show-identifiers", help="print phones unmasked (audited)")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 200,
    actor: Actor = None,
) -> None:
    """List adoptions where several CRM records held the person's number or e-mail: the
    record adopted (the most recently modified) and the ones left unused. Audited."""
    from wa_bridge.ops.adoptions import adoption_data
    from wa_bridge.ops.adoptions import adoptions as find

    items = _listed(find, adoption_data, reveal=show_identifiers, limit=limit, actor=actor)
    for item in items:
        typer.echo(orjson.dumps(item).decode() if as_json else _adoption_line(item))
    typer.echo(f"{len(items)} adoption(s) that left other records unused", err=True)


def _adoption_line(item: dict[str, Any]) -> str:
    others = " ".join(item["not_adopted"]) or "?"
    if not item["complete"]:
        others += f" (of {item['candidates'] - 1}; the others were not recorded)"
    return (
        f"{item['at'][:19]}  {item['contact_id']}  {item['phone'] or '-'}  by {item['rule']}: "
        f"adopted {item['kind']} {item['adopted']}; not adopted {others}"
    )


@identity_app.command()
def merge(
    keep: Annotated[str, typer.Argument(help="the contact id to keep (c_…)")],
    other: Annotated[str, typer.Argument(help="the contact id merged into it")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would move")] = False,
    actor: Actor = None,
) -> None:
    """Merge OTHER into KEEP: identifiers, cases, consents in our maps, and the CRM's
    records (a CRM's own merge may be final: the output says so). Audited."""
    from wa_bridge.ops.identity import merge as run_merge

    settings = settings_or_exit()
    who = _who(actor)
    outcome = _run(
        settings,
        lambda store: run_merge(
            settings, store, keep, other, actor=who, role=ROLE, dry_run=dry_run
        ),
    )
    _print_merge(outcome)


def _print_merge(outcome: MergeOutcome) -> None:
    if outcome.merge_id is None:
        typer.echo(f"dry run: would merge {outcome.other_id} into {outcome.keep_id}")
    else:
        typer.echo(f"merge {outcome.merge_id}: {outcome.other_id} into {outcome.keep_id}")
    for line in (*outcome.map_lines, *outcome.crm_lines):
        typer.echo(f"  {line}")
    if outcome.merge_id is None:
        typer.echo("nothing changed")
        return
    if outcome.crm_reversible:
        typer.echo(f"undo: wa-bridge identity unmerge {outcome.merge_id}")
    else:
        typer.echo(
            f"undo: wa-bridge identity unmerge {outcome.merge_id} gives our maps back; "
            "the CRM's merge is final (see above)"
        )


@identity_app.command()
def unmerge(
    merge_id: Annotated[int, typer.Argument(help="the merge's id (wa-bridge identity merges)")],
    actor: Actor = None,
) -> None:
    """Undo a merge in our maps (identifier links, cases, consents) and, where the CRM
    allows it, in the CRM. Audited."""
    from wa_bridge.ops.identity import unmerge as run_unmerge

    settings = settings_or_exit()
    who = _who(actor)
    outcome = _run(
        settings, lambda store: run_unmerge(settings, store, merge_id, actor=who, role=ROLE)
    )
    _print_unmerge(outcome)


def _print_unmerge(outcome: UnmergeOutcome) -> None:
    typer.echo(f"merge {outcome.merge_id} undone: {outcome.other_id} apart from {outcome.keep_id}")
    for line in (*outcome.map_lines, *outcome.crm_lines):
        typer.echo(f"  {line}")


@identity_app.command("merges")
def merges_cmd(
    as_json: AsJson = False, limit: Annotated[int, typer.Option("--limit", min=1)] = 100
) -> None:
    """List merges, newest first (their ids undo them)."""
    from wa_bridge.ops.identity import merges

    settings = settings_or_exit()
    rows = _run(settings, lambda store: merges(store, limit=limit))
    echo_rows(rows, as_json=as_json, data=_row_data, line=_merge_line)


def _merge_line(row: MergeRow) -> str:
    undone = f" (undone by {row.unmerged_by})" if row.status == "unmerged" else ""
    return (
        f"{row.id:>5}  {row.merged_at:%Y-%m-%dT%H:%M:%S}  {row.other_id} into "
        f"{row.keep_id}  by {row.actor}  {row.status}{undone}"
    )


def _row_data(row: MergeRow) -> dict[str, Any]:
    data = json_fields(
        row,
        "id",
        "keep_id",
        "other_id",
        "status",
        "crm",
        "crm_result",
        "crm_reversible",
        "actor",
        "merged_at",
        "unmerged_by",
        "unmerged_at",
    )
    data["crm_result"] = row.crm_result.splitlines()  # one line of the CRM's answer each
    return data


def register(app: typer.Typer) -> None:
    app.add_typer(identity_app, name="identity")
