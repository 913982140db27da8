"""``wa-bridge normalize FILE``: a webhook body → canonical events, one JSON line each (offline)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

from wa_bridge.cli._common import exit_with
from wa_bridge.events import CanonicalEvent
from wa_bridge.normalize import NotAWebhook, normalize_webhook

__all__ = ["register"]


def _read(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as exc:
        raise exit_with(f"wa-bridge normalize: cannot read {file}: {exc.strerror}", 1) from exc


def _received_at(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise exit_with(
            f"wa-bridge normalize: --received-at is not an ISO time: {text!r}", 2
        ) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _events(payload: object, received_at: datetime, *, all_named: bool) -> list[CanonicalEvent]:
    if not all_named:
        return normalize_webhook(payload, received_at=received_at)
    if not isinstance(payload, dict):
        raise NotAWebhook("--all-named expects a JSON object of named webhook bodies")
    events: list[CanonicalEvent] = []
    for name, body in payload.items():
        try:
            events.extend(normalize_webhook(body, received_at=received_at))
        except NotAWebhook as exc:
            raise NotAWebhook(f"{name}: {exc}") from exc
    return events


def normalize(
    file: Annotated[str, typer.Argument(help="Webhook body (JSON file), or - for stdin.")],
    received_at: Annotated[
        str | None,
        typer.Option("--received-at", help="Receipt time (ISO 8601) for recvtime; default now."),
    ] = None,
    all_named: Annotated[
        bool,
        typer.Option("--all-named", help="FILE is an object of named bodies (pywa test data)."),
    ] = False,
) -> None:
    """Print the canonical events of a Meta webhook body, one JSON object per line.

    Offline: nothing is published. Exit 1 with the reason on stderr for a bad body.
    """
    moment = _received_at(received_at)
    raw = _read(file)
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise exit_with(f"wa-bridge normalize: not valid JSON: {exc}", 1) from exc
    try:
        events = _events(payload, moment, all_named=all_named)
    except NotAWebhook as exc:
        raise exit_with(f"wa-bridge normalize: not a WhatsApp webhook: {exc}", 1) from exc
    out = sys.stdout.buffer
    for event in events:
        out.write(event.to_json() + b"\n")
    out.flush()


def register(app: typer.Typer) -> None:
    """Add the ``normalize`` command to the ``wa-bridge`` app."""
    app.command("normalize")(normalize)
