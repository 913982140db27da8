"""``wa-bridge db upgrade`` (Alembic migrations) and ``wa-bridge db purge`` (retention)."""

from __future__ import annotations

import typer
from sqlalchemy.engine import make_url

from wa_bridge.cli._common import settings_or_exit
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
        typer.echo(f"wa-bridge: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    except OSError as exc:
        typer.echo(f"wa-bridge: database unreachable at {shown}: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"database at {shown} is at revision {revision}")


@db_app.command("purge")
def purge_cmd() -> None:
    """Forget ledger ids and closed dead letters older than the retention windows.

    The worker runs the same job every WA_BRIDGE_RETENTION_INTERVAL_S; this command is for
    cron or a one-off. Open dead letters are never purged.
    """
    import asyncio
    from datetime import UTC, datetime

    from wa_bridge.store.retention import purge_expired
    from wa_bridge.worker.assembly import state_store

    settings = settings_or_exit()

    async def run() -> tuple[int, int]:
        async with state_store(settings) as store:
            purged = await purge_expired(
                store,
                now=datetime.now(UTC),
                ledger_days=settings.dedup_retention_days,
                dead_letter_days=settings.dead_letter_retention_days,
            )
        return purged.ledger, purged.dead_letters

    ledger, dead = asyncio.run(run())
    typer.echo(f"purged {ledger} ledger ids and {dead} closed dead letters")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
