"""Alembic migrations (``migrations/`` at the repository root), run programmatically.

Alembic's env.py runs its own event loop, so call :func:`upgrade` from synchronous code, or
from async code through ``asyncio.to_thread``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from wa_bridge.errors import ConfigError

__all__ = ["MIGRATIONS_DIR", "upgrade"]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parents[3] / "migrations"


def upgrade(url: str, revision: str = "head", *, migrations_dir: Path = MIGRATIONS_DIR) -> None:
    """Migrate the database at ``url`` to ``revision``; blocks; raises ConfigError if no scripts."""
    from alembic import command
    from alembic.config import Config

    ini = migrations_dir / "alembic.ini"
    if not ini.is_file():
        raise ConfigError(f"migration scripts not found at {migrations_dir}")
    config = Config(str(ini))
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["url"] = url
    command.upgrade(config, revision)
