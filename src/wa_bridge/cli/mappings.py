"""``wa-bridge mappings``: validate, test and dry-run mapping files (no broker, no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from wa_bridge.errors import InvalidEvent, MappingOutputInvalid
from wa_bridge.events import CanonicalEvent
from wa_bridge.mapping import MappingErrors, load_mapping
from wa_bridge.mapping.testing import find_test_files, render_ops, run_test_file

__all__ = ["register"]

group = typer.Typer(
    name="mappings",
    help="Check, unit-test and dry-run the YAML field mappings.",
    no_args_is_help=True,
)

PathArg = Annotated[Path, typer.Argument(help="A mapping file or a directory of them.")]


def _mapping_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    return [path]


@group.command()
def validate(path: PathArg = Path("mappings")) -> None:
    """Check mapping files; print every error as file:line:column: key: message (exit 1).

    An error in a file that others extend is printed once, in that file's name and line.
    """
    files = _mapping_files(path)
    if not files:
        typer.echo(f"{path}: no mapping files (*.yaml) found", err=True)
        raise typer.Exit(code=1)
    failed = 0
    shown: set[str] = set()
    for file in files:
        try:
            mapping = load_mapping(file, allow_base=True)
        except MappingErrors as exc:
            failed += 1
            texts = [str(issue) for issue in exc.errors]
            for text in texts:
                if text not in shown:
                    typer.echo(text)
            if shown.issuperset(texts):
                typer.echo(f"{file}: invalid, see the errors above")
            shown.update(texts)
            continue
        kind = mapping.connector or "base mapping"
        via = f", extends {' → '.join(mapping.extends)}" if mapping.extends else ""
        typer.echo(f"ok: {file} ({kind}, {len(mapping.event_types)} event types{via})")
    if failed:
        typer.echo(f"{failed} of {len(files)} mapping files have errors", err=True)
        raise typer.Exit(code=1)


@group.command("test")
def test_(
    path: Annotated[
        Path, typer.Argument(help="A test file, or a mappings directory (runs its tests/*.yaml).")
    ] = Path("mappings"),
) -> None:
    """Run mapping test files (input event → expected operations); print a diff on failure."""
    files = find_test_files(path)
    if not files:
        typer.echo(f"{path}: no mapping test files found", err=True)
        raise typer.Exit(code=1)
    passed = failed = 0
    for file in files:
        try:
            results = run_test_file(file)
        except MappingErrors as exc:
            failed += 1
            for issue in exc.errors:
                typer.echo(f"ERROR {issue}")
            continue
        for result in results:
            via = f" [{result.mapping}]" if result.mapping else ""
            if result.passed:
                passed += 1
                typer.echo(f"PASS {result.where}{via} {result.name}")
            else:
                failed += 1
                typer.echo(f"FAIL {result.where}{via} {result.name}")
                typer.echo("    " + result.detail.replace("\n", "\n    "))
    typer.echo(f"{passed} passed, {failed} failed")
    if failed:
        raise typer.Exit(code=1)


def _events_of(payload: Any) -> list[CanonicalEvent]:
    if isinstance(payload, dict) and payload.get("object") == "whatsapp_business_account":
        from wa_bridge.normalize import normalize_webhook

        return normalize_webhook(payload, received_at=datetime.now(UTC))
    items = payload if isinstance(payload, list) else [payload]
    try:
        return [CanonicalEvent.from_dict(item) for item in items]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidEvent(f"not a canonical event nor a Meta webhook body: {exc}") from exc


@group.command("dry-run")
def dry_run(
    event_file: Annotated[
        Path, typer.Argument(help="A canonical event (or a list of them), or a raw webhook body.")
    ],
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", "-m", help="Mapping file (default: WA_BRIDGE_MAPPINGS_PATH)."),
    ] = None,
) -> None:
    """Print the CRM operations an event would produce, and any validation errors."""
    if mapping is None:
        from wa_bridge.cli._common import settings_or_exit
        from wa_bridge.resources import resolve_mappings_path

        mapping = resolve_mappings_path(settings_or_exit().mappings_path)
    try:
        compiled = load_mapping(mapping, allow_base=True)
    except MappingErrors as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from exc
    try:
        events = _events_of(orjson.loads(event_file.read_bytes()))
    except (OSError, orjson.JSONDecodeError, InvalidEvent) as exc:
        typer.echo(f"{event_file}: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    invalid = 0
    for event in events:
        typer.echo(f"# event {event.id} ({event.type})")
        try:
            ops = compiled.apply(event)
        except MappingOutputInvalid as exc:
            invalid += 1
            typer.echo(f"INVALID (would be dead-lettered): {exc}")
            continue
        if not ops:
            typer.echo("(no operations: no rule for this event type, or `none`)")
        rendered = render_ops(ops, with_source=True)
        for op in rendered:
            typer.echo(json.dumps(op, ensure_ascii=False, indent=2))
    if invalid:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="mappings")
