"""``wa-bridge db upgrade`` (Alembic migrations) and ``wa-bridge db purge`` (retention)."""

from __future__ import annotations

import typer
from sqlalchemy.engine import make_url

from wa_bridge.cli._common import exit_with, settings_or_exit
from wa_bridge.errors import ConfigError

__all__ = ["register"]

db_app = typer.Typer(help="The state database.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade_cmd(
    url: str | None = typer.Option(
        None, "--url", help="Database URL; default WA_BRIDGE_DATABASE_URL."
    ),
    revision: str = typer.Option("head", help="Target revision."),
) -> None:
    """Run the Alembic migrations against the state database."""
    from wa_bridge.store.migrate import upgrade

    target = url or settings_or_exit().database_url
    if not target:
        typer.echo(
            "wa-bridge: no database URL: set WA_BRIDGE_DATABASE_URL (or pass --url), e.g. "
            "postgresql+asyncpg://user@host/db",
            err=True,
        )
        raise typer.Exit(code=2)
    shown = make_url(target).render_as_string(hide_password=True)
    try:
        upgrade(target, revision)
    except ConfigError as exc:
        raise exit_with(f"wa-bridge: {exc}", 2) from exc
    except OSError as exc:
        raise exit_with(f"wa-bridge: database unreachable at {shown}: {exc}", 1) from exc
    typer.echo(f"database at {shown} is at revision {revision}")


@db_app.command("purge")
def purge_cmd() -> None:
    """Same as ``wa-bridge retention run`` (kept as an alias): purge what is older than
    the retention windows, audited. Open dead letters are kept unless their window is set.
    """
    from wa_bridge.cli.retention import run_retention_once

    counts = run_retention_once(settings_or_exit())
    ledger, dead = counts.get("ledger", 0), counts.get("dead_letters", 0)
    others = sum(counts.values()) - ledger - dead
    typer.echo(f"purged {ledger} ledger ids and {dead} closed dead letters ({others} other rows)")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
