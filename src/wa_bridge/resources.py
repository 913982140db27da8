"""Where the project's data files are: schemas/ and mappings/ at the repository top level.

In a checkout (or an editable install) they are read from the source tree; an installed
wheel carries copies under ``wa_bridge/_data/`` (see ``force-include`` in pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = ["data_path", "resolve_mappings_path"]

_PACKAGE_DIR: Final = Path(__file__).resolve().parent
_PACKAGED: Final = _PACKAGE_DIR / "_data"
_SOURCE_TREE: Final = _PACKAGE_DIR.parents[1]


def data_path(relative: str) -> Path:
    """``schemas/x.json`` → the file in the wheel's copy, else in the source tree."""
    packaged = _PACKAGED / relative
    if packaged.exists():
        return packaged
    return _SOURCE_TREE / relative


def resolve_mappings_path(configured: str | Path) -> Path:
    """The mapping file to load: as configured (relative to the working directory), or,
    for a relative path that is not there, the shipped copy of the same name."""
    path = Path(configured)
    if path.is_absolute() or path.exists():
        return path
    shipped = data_path(str(path))
    return shipped if shipped.exists() else path
