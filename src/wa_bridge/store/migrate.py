"""Alembic migrations, run programmatically.

The scripts live in ``migrations/`` at the repository root; a built wheel carries them as
``wa_bridge/_migrations`` (``[tool.hatch.build.targets.wheel.force-include]``). Alembic's
env.py runs its own event loop, so call :func:`upgrade` from synchronous code, or from
async code through ``asyncio.to_thread``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from wa_bridge.errors import ConfigError

__all__ = [
    "MIGRATIONS_DIR",
    "PACKAGED_MIGRATIONS_DIR",
    "SOURCE_MIGRATIONS_DIR",
    "find_migrations_dir",
    "upgrade",
]

PACKAGED_MIGRATIONS_DIR: Final = Path(__file__).resolve().parents[1] / "_migrations"
SOURCE_MIGRATIONS_DIR: Final = Path(__file__).resolve().parents[3] / "migrations"


def find_migrations_dir(
    candidates: tuple[Path, ...] = (PACKAGED_MIGRATIONS_DIR, SOURCE_MIGRATIONS_DIR),
) -> Path:
    """The first candidate holding ``alembic.ini`` (installed package, then source tree).

    When none does, the last candidate: :func:`upgrade` then names it in its error.
    """
    for candidate in candidates:
        if (candidate / "alembic.ini").is_file():
            return candidate
    return candidates[-1]


MIGRATIONS_DIR: Final = find_migrations_dir()


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
