"""``wa-bridge gaps --since``: events Kafka received that the CRM has not got, and why."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wa_bridge.cli._common import echo_rows, exit_with, json_fields, settings_or_exit, with_store
from wa_bridge.errors import BusUnavailable

if TYPE_CHECKING:
    from wa_bridge.ops.gaps import Gap

__all__ = ["parse_since", "register"]

_SPAN = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, now: datetime) -> datetime:
    """``2h``, ``30m``, ``7d`` (ago) or an ISO time (UTC when it has no zone)."""
    found = _SPAN.fullmatch(text.strip())
    if found:
        return now - timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"--since: give 2h, 30m, 7d or an ISO time, not {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def gaps(
    since: Annotated[str, typer.Option("--since", help="2h, 30m, 7d or an ISO time")] = "24h",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List events received (held by Kafka's main topic) since a time but not applied,
    each with why: dead-lettered, in retry, not consumed yet, or no ledger row."""
    from wa_bridge.ops.gaps import find_gaps

    settings = settings_or_exit()
    start = parse_since(since, datetime.now(UTC))
    try:
        received, found = with_store(
            settings, lambda store: find_gaps(settings, store, since=start)
        )
    except BusUnavailable as exc:
        raise exit_with(f"wa-bridge gaps: {exc}", 2) from exc
    echo_rows(found, as_json=as_json, data=_data, line=_line)
    typer.echo(
        f"{received} event(s) received since {start:%Y-%m-%dT%H:%M:%SZ}; {len(found)} not applied",
        err=True,
    )
    if found:
        raise typer.Exit(code=1)


def _data(gap: Gap) -> dict[str, Any]:
    event = json_fields(gap.event, "event_id", "event_type", "partition", "offset")
    return {**event, **json_fields(gap, "reason", "detail")}


def _line(gap: Gap) -> str:
    e = gap.event
    return (
        f"{e.partition:>3}@{e.offset:<8} {e.event_type:<30} {gap.reason:<17} "
        f"{e.event_id}  {gap.detail}"
    )


def register(app: typer.Typer) -> None:
    app.command(name="gaps")(gaps)
