"""``wa-bridge dlq list|show|replay``: look at dead letters and send them through again."""

from __future__ import annotations

import asyncio
import getpass
import os
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import orjson
import typer

from wa_bridge.cli._common import (
    echo_rows,
    exit_with,
    json_fields,
    require_state_database,
    settings_or_exit,
    with_store,
)
from wa_bridge.settings import Settings
from wa_bridge.store.api import DeadLetter, DeadLetterFilter, DeadLetterStatus, Store

if TYPE_CHECKING:
    from wa_bridge.store.replay_runs import ReplayRun
    from wa_bridge.worker.replay import ReplayResult

__all__ = ["register"]

dlq_app = typer.Typer(help="Dead letters: list, show, replay, discard.", no_args_is_help=True)

ErrorClass = Annotated[str | None, typer.Option("--error-class", help="e.g. CrmRejected")]
EventType = Annotated[str | None, typer.Option("--event-type")]
ContactOpt = Annotated[str | None, typer.Option("--contact", help="contact key")]
Since = Annotated[str | None, typer.Option("--since", help="ISO time, inclusive")]
Until = Annotated[str | None, typer.Option("--until", help="ISO time, exclusive")]
Status = Annotated[str, typer.Option("--status", help="open, replayed, discarded or all")]
Limit = Annotated[int, typer.Option("--limit")]


def _time(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{name} must be an ISO time, got {text!r}") from exc


def _filter(
    error_class: str | None,
    event_type: str | None,
    contact: str | None,
    since: str | None,
    until: str | None,
    status: str,
    limit: int,
) -> DeadLetterFilter:
    if status not in ("open", "replayed", "discarded", "all"):
        raise typer.BadParameter("--status must be open, replayed, discarded or all")
    return DeadLetterFilter(
        status=None if status == "all" else cast(DeadLetterStatus, status),
        error_class=error_class,
        event_type=event_type,
        contact_key=contact,
        since=_time(since, "--since"),
        until=_time(until, "--until"),
        limit=limit,
    )


def _summary(d: DeadLetter) -> dict[str, Any]:
    return json_fields(
        d,
        "id",
        "event_id",
        "event_type",
        "contact_key",
        "error_class",
        "error_message",
        "attempts",
        "status",
        "first_failed_at",
        "last_failed_at",
    )


def _line(d: DeadLetter) -> str:
    return (
        f"{d.id:>6}  {d.status:<9} {d.error_class:<22} {d.event_type:<30} "
        f"attempts={d.attempts} last={d.last_failed_at:%Y-%m-%dT%H:%M:%S}  {d.event_id}"
    )


@dlq_app.command("list")
def list_(
    error_class: ErrorClass = None,
    event_type: EventType = None,
    contact: ContactOpt = None,
    since: Since = None,
    until: Until = None,
    status: Status = "open",
    limit: Limit = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List dead letters matching the filters, newest first; the count (on stderr) is of
    all that match, not only the ``--limit`` shown."""
    settings = settings_or_exit()
    flt = _filter(error_class, event_type, contact, since, until, status, limit)

    async def page(store: Store) -> tuple[list[DeadLetter], int]:
        return await store.list_dead_letters(flt), await store.count_dead_letters(flt)

    letters, total = with_store(settings, page)
    echo_rows(letters, as_json=as_json, data=_summary, line=_line)
    typer.echo(_count_line(len(letters), total), err=True)


def _count_line(shown: int, total: int) -> str:
    """The true count of matching dead letters, and how many of them the page shows."""
    if shown < total:
        return f"{total} dead letter(s) match; showing the newest {shown} (raise --limit)"
    return f"{total} dead letter(s)"


@dlq_app.command()
def show(dead_letter_id: int) -> None:
    """Show one dead letter: the event, the error, the CRM's message, attempts, history."""
    settings = settings_or_exit()

    letter = with_store(settings, lambda store: store.get_dead_letter(dead_letter_id))
    if letter is None:
        raise exit_with(f"wa-bridge dlq: no dead letter {dead_letter_id}", 1)
    out = _summary(letter)
    out["crm_error"] = letter.crm_error
    out["history"] = list(letter.errors)
    try:
        out["event"] = orjson.loads(letter.payload)
    except orjson.JSONDecodeError:
        out["event"] = letter.payload.decode("utf-8", "replace")
    typer.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())


@dlq_app.command()
def replay(
    ids: Annotated[list[int] | None, typer.Argument(help="dead letter ids")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="every open dead letter")] = False,
    use_filter: Annotated[
        bool, typer.Option("--filter", help="replay what the filters select")
    ] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="go on with the last interrupted --all/--filter run")
    ] = False,
    error_class: ErrorClass = None,
    event_type: EventType = None,
    contact: ContactOpt = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 10_000,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    actor: Annotated[
        str | None, typer.Option("--actor", help="who replays (default $USER)")
    ] = None,
) -> None:
    """Send dead letters through the normal path again (mapping → connector); audited.

    By id: each one, whatever happened before. With --all or --filter: a resumable run
    (Ctrl-C, then --resume) with a progress bar; a dead letter already replayed
    WA_BRIDGE_REPLAY_MAX_FAILURES times without success is held back (loop guard).
    """
    if not ids and not (replay_all or use_filter or resume):
        raise typer.BadParameter("give dead letter ids, --all, --filter or --resume")
    settings = settings_or_exit()
    require_state_database(settings)
    who = actor or os.environ.get("USER") or getpass.getuser()
    flt = _filter(error_class, event_type, contact, since, until, "open", limit)
    if ids or dry_run:
        selected = flt if (replay_all or use_filter) else None
        results = asyncio.run(_replay(settings, ids or [], selected, who, dry_run))
        failed = 0
        for r in results:
            if r.status == "not_found":
                typer.echo(f"wa-bridge dlq: no dead letter {r.dead_letter_id}", err=True)
                continue
            failed += r.status == "failed"
            typer.echo(f"{r.dead_letter_id:>6}  {r.status:<12} {r.event_id}  {r.detail}".rstrip())
        if failed:
            raise typer.Exit(code=1)
        return
    run = asyncio.run(_bulk(settings, flt, who, resume=resume))
    typer.echo(
        f"run {run.id}: {run.replayed} replayed, {run.failed} failed, {run.held} held "
        "by the loop guard"
    )
    if run.failed or run.held:
        raise typer.Exit(code=1)


async def _bulk(
    settings: Settings, flt: DeadLetterFilter, actor: str, *, resume: bool
) -> ReplayRun:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from wa_bridge.ops.dead_letters import BulkReplay, RunProgress
    from wa_bridge.worker.assembly import DeadLetterReplayer, state_store

    async with (
        state_store(settings) as store,
        DeadLetterReplayer(settings, store) as replayer,
    ):

        async def one(dead_letter_id: int) -> tuple[str, str]:
            [result] = await replayer.replay([dead_letter_id], actor=actor)
            return result.status, result.detail

        bulk = BulkReplay(store, one, max_failures=settings.replay_max_failures)
        if resume:
            run = await store.ops.replay_run()
            if run is None:
                raise exit_with("wa-bridge dlq: no interrupted run to resume", 1)
            typer.echo(f"resuming run {run.id} after dead letter {run.cursor}", err=True)
        else:
            run = await bulk.start(flt, actor=actor)
        total = len(await bulk.pending(run))
        with Progress(
            TextColumn("replaying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"),
        ) as bar:
            task = bar.add_task("replay", total=total, last="")

            def step(p: RunProgress) -> None:
                bar.update(task, completed=p.done, last=f"{p.dead_letter_id}: {p.result}")
                if p.result != "replayed":
                    bar.console.print(f"{p.dead_letter_id:>6}  {p.result:<10} {p.detail}")

            return await bulk.run(run, step)


@dlq_app.command()
def discard(
    ids: Annotated[list[int], typer.Argument(help="dead letter ids")],
    reason: Annotated[str, typer.Option("--reason", help="why (kept in the audit log)")] = "",
    actor: Annotated[
        str | None, typer.Option("--actor", help="who discards (default $USER)")
    ] = None,
) -> None:
    """Close dead letters without replaying them (audited); they are purged later."""
    from wa_bridge.ops.dead_letters import discard as discard_letters

    settings = settings_or_exit()
    who = actor or os.environ.get("USER") or getpass.getuser()
    results = with_store(
        settings,
        lambda store: discard_letters(store, ids, actor=who, role="operator", reason=reason),
    )
    for dead_letter_id, result in results.items():
        typer.echo(f"{dead_letter_id:>6}  {result}")
    if any(r == "not_found" for r in results.values()):
        raise typer.Exit(code=1)


async def _replay(
    settings: Settings,
    ids: list[int],
    flt: DeadLetterFilter | None,
    actor: str,
    dry_run: bool,
) -> list[ReplayResult]:
    from wa_bridge.worker.assembly import DeadLetterReplayer, state_store

    async with (
        state_store(settings) as store,
        DeadLetterReplayer(settings, store) as replayer,
    ):
        return await replayer.replay(ids, flt=flt, actor=actor, dry_run=dry_run)


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")
