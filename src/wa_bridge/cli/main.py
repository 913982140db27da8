"""The ``wa-bridge`` command: a thin Typer app; each command group lives in its own module."""

from __future__ import annotations

import typer

from wa_bridge.cli import (
    account,
    audit,
    consent,
    crm,
    db,
    dev,
    dlq,
    export,
    gaps,
    identity,
    mappings,
    normalize,
    receiver,
    retention,
    trace,
    worker,
)
from wa_bridge.cli._common import run_cli

__all__ = ["app", "main"]

app = typer.Typer(
    name="wa-bridge",
    help="WhatsApp Business webhooks in, CRM records out.",
    no_args_is_help=True,
    add_completion=False,
)

# Each command group lives in its own module and registers itself (order: --help order).
for _group in (
    dev,
    receiver,
    normalize,
    mappings,
    worker,
    db,
    dlq,
    trace,
    gaps,
    audit,
    retention,
    crm,
    identity,
    account,
    consent,
    export,
):
    _group.register(app)


@app.command()
def version() -> None:
    """Print the wa-bridge version."""
    from wa_bridge import __version__

    typer.echo(__version__)


def main() -> None:
    run_cli(app)
