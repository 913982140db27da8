"""The import graph follows the data flow (CONVENTIONS.md "Layout: the tree is the data flow").

- ``normalize/`` and ``mapping/`` are pure: no I/O libraries, no other wa_bridge layer but
  the shared contracts (and mapping may use normalize's phone rules).
- Nothing imports ``cli/``; only ``cli/`` and ``ops/`` import ``receiver/``; only ``cli/``
  imports ``ops/`` (metric names and token auth live below it, in ``metrics`` and ``auth``).
- The receiver half never imports the worker half, and the reverse.
- No package imports another package's private names: a ``_module`` or a ``_name`` stays
  inside its package (CONVENTIONS.md "Peers share a shape").
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "wa_bridge"
CONTRACTS = {"events", "errors", "operations", "settings", "log", "resources", "clock"}
IO_LIBRARIES = {"aiokafka", "sqlalchemy", "httpx", "asyncpg", "aiosqlite", "uvicorn", "fastapi"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _private_imports(path: Path) -> set[str]:
    """``module`` or ``module:name`` for each absolute import of a private module or name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if _is_private_module(a.name))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if _is_private_module(node.module):
                found.add(node.module)
            found.update(f"{node.module}:{a.name}" for a in node.names if _is_private_name(a.name))
    return found


def _is_private_name(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _is_private_module(module: str) -> bool:
    return any(_is_private_name(part) for part in module.split("."))


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


def test_ops_sits_on_top_only_the_cli_imports_it() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        layer = path.relative_to(PACKAGE).parts[0]
        if layer in ("ops", "cli"):
            continue
        problems += [
            f"{path.relative_to(PACKAGE)} imports {module}"
            for module in _imports(path)
            if _layer_of(module) == "ops"
        ]
    assert problems == []


def test_the_two_halves_meet_only_through_the_bus_and_contracts() -> None:
    problems = []
    for half, other in (("receiver", "worker"), ("worker", "receiver")):
        for path in _modules(half):
            for module in _imports(path):
                if _layer_of(module) == other:
                    problems.append(f"{half}/{path.name} imports {module}")
    assert problems == []


# Known offenders, each with the change that removes it (none today).
PRIVATE_IMPORTS_ALLOWED: set[tuple[str, str]] = set()


def test_no_package_imports_another_packages_private_names() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        layer = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for target in _private_imports(path):
            if _layer_of(target.split(":")[0]) == layer:
                continue  # a package may use its own private parts
            if (layer, target.split(":")[0]) in PRIVATE_IMPORTS_ALLOWED:
                continue
            problems.append(f"{rel} imports {target}")
    assert sorted(problems) == []


@pytest.mark.parametrize("package", ["bus", "ops", "worker"])
def test_module_packages_list_every_public_module_in_all(package: str) -> None:
    """Packages whose ``__all__`` names modules list exactly their public modules."""
    import importlib

    listed = set(importlib.import_module(f"wa_bridge.{package}").__all__)
    modules = {p.stem for p in (PACKAGE / package).glob("*.py") if not p.stem.startswith("_")} | {
        p.name for p in (PACKAGE / package).iterdir() if (p / "__init__.py").exists()
    }
    assert listed == modules


def test_every_package_curates_its_all() -> None:
    missing = [
        str(init.relative_to(PACKAGE))
        for init in PACKAGE.rglob("__init__.py")
        if "__all__" not in init.read_text()
    ]
    assert missing == []
