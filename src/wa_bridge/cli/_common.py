"""Helpers shared by the CLI modules: settings loading with a clean exit on bad config."""

from __future__ import annotations

import typer

from wa_bridge.errors import ConfigError
from wa_bridge.settings import Settings, load_settings

__all__ = ["settings_or_exit"]


def settings_or_exit(**overrides: object) -> Settings:
    """Load settings; on a bad value print one line naming it and exit with code 2."""
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        typer.echo(f"wa-bridge: configuration error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
