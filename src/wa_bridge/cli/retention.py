"""``wa-bridge retention run``: purge what is older than its window, print what went."""

from __future__ import annotations

import typer

from wa_bridge.cli._common import settings_or_exit, with_store
from wa_bridge.settings import Settings

__all__ = ["register", "run_retention_once"]

retention_app = typer.Typer(
    help="Retention windows (WA_BRIDGE_*_RETENTION_DAYS).", no_args_is_help=True
)


def run_retention_once(settings: Settings) -> dict[str, int]:
    """Purge every target with a window (each purge audited); target → rows removed."""
    from datetime import UTC, datetime

    from wa_bridge.store.retention import RetentionWindows, purge_expired

    windows = RetentionWindows.from_settings(settings)
    purged = with_store(
        settings, lambda store: purge_expired(store, now=datetime.now(UTC), windows=windows)
    )
    return {str(k): v for k, v in purged.counts.items()}


@retention_app.command("run")
def run_cmd() -> None:
    """Purge now (the worker does it every WA_BRIDGE_RETENTION_INTERVAL_S); open dead
    letters, note bodies and the other windows only when their setting is above 0."""
    from wa_bridge.store.retention import PURGE_TARGETS, RetentionWindows

    settings = settings_or_exit()
    counts = run_retention_once(settings)
    windows = RetentionWindows.from_settings(settings)
    for target in PURGE_TARGETS:
        days = windows.days(target)
        if days <= 0:
            typer.echo(f"{target:<18} kept (no window)")
        else:
            typer.echo(f"{target:<18} {counts.get(target, 0):>8} removed (older than {days} d)")


def register(app: typer.Typer) -> None:
    app.add_typer(retention_app, name="retention")
