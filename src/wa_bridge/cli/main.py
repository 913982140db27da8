"""The ``wa-bridge`` command: a thin Typer app; each command group lives in its own module."""

from __future__ import annotations

import importlib

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="wa-bridge",
    help="WhatsApp Business webhooks in, CRM records out.",
    no_args_is_help=True,
    add_completion=False,
)

# (module, attribute, group name or None for top-level commands registered by the module)
_COMMAND_MODULES = (
    "wa_bridge.cli.dev",
    "wa_bridge.cli.receiver",
    "wa_bridge.cli.normalize",
    "wa_bridge.cli.mappings",
    "wa_bridge.cli.worker",
    "wa_bridge.cli.db",
    "wa_bridge.cli.dlq",
    "wa_bridge.cli.crm",
)


def _register() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # command group not built yet
            raise
        module.register(app)


@app.command()
def version() -> None:
    """Print the wa-bridge version."""
    from wa_bridge import __version__

    typer.echo(__version__)


_register()


def main() -> None:
    app()
