"""The import graph follows the data flow (CONVENTIONS.md "Layout: the tree is the data flow").

- ``normalize/`` and ``mapping/`` are pure: no I/O libraries, no other wa_bridge layer but
  the shared contracts (and mapping may use normalize's phone rules).
- Nothing imports ``cli/``; only ``cli/`` and ``ops/`` import ``receiver/``.
- The receiver half never imports the worker half, and the reverse.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "wa_bridge"
CONTRACTS = {"events", "errors", "operations", "settings", "log", "resources"}
IO_LIBRARIES = {"aiokafka", "sqlalchemy", "httpx", "asyncpg", "aiosqlite", "uvicorn", "fastapi"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "wa_bridge" and len(parts) > 1 else None


def _modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", ["normalize", "mapping"])
def test_pure_layers_do_no_io_and_stay_in_their_lane(layer: str) -> None:
    allowed = CONTRACTS | {layer} | ({"normalize"} if layer == "mapping" else set())
    problems = []
    for path in _modules(layer):
        for module in _imports(path):
            top = module.split(".")[0]
            if top in IO_LIBRARIES:
                problems.append(f"{path.name} imports {module}")
            wa_layer = _layer_of(module)
            if wa_layer is not None and wa_layer not in allowed:
                problems.append(f"{path.name} imports {module}")
    assert problems == []


def test_nothing_imports_cli_and_only_the_top_imports_receiver() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        layer = path.relative_to(PACKAGE).parts[0]
        for module in _imports(path):
            target = _layer_of(module)
            if target == "cli" and layer != "cli":
                problems.append(f"{path.relative_to(PACKAGE)} imports {module}")
            if target == "receiver" and layer not in ("receiver", "cli", "ops"):
                problems.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert problems == []


def test_the_two_halves_meet_only_through_the_bus_and_contracts() -> None:
    problems = []
    for half, other in (("receiver", "worker"), ("worker", "receiver")):
        for path in _modules(half):
            for module in _imports(path):
                if _layer_of(module) == other:
                    problems.append(f"{half}/{path.name} imports {module}")
    assert problems == []
