"""Read a mapping file, the files it ``extends`` and the fragment files each ``include``s.

A *layer* is one mapping file of the ``extends`` chain together with its includes: the
catalogs and fragments it defines. Within a layer a name is defined once; a later layer
(the extending file) may define a name again to replace the inherited one. Paths in
``extends`` and ``include`` are relative to the file that names them; every problem keeps
its own ``file:line:column``, and an ``extends`` cycle is reported at the ``extends`` line
that closes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wa_bridge.mapping._node import Node
from wa_bridge.mapping._schema import check_structure
from wa_bridge.mapping._yaml import YamlFile, load_yaml_file
from wa_bridge.mapping.issues import MappingErrors, MappingIssue

__all__ = ["CatalogSpec", "Layer", "load_chain"]

_MAPPING_ONLY = ("connector", "events", "extends", "overrides")


@dataclass(frozen=True, slots=True)
class CatalogSpec:
    name: str
    values: dict[str, str]  # input → CRM value (an allowed-values list maps each to itself)
    default: str | None
    has_default: bool
    node: Node


@dataclass(slots=True)
class Layer:
    """One mapping file of the chain and what it (with its includes) defines."""

    file: YamlFile
    catalogs: dict[str, CatalogSpec] = field(default_factory=dict)
    fragments: dict[str, Node] = field(default_factory=dict)

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.file.data
        return data


def display_of(parent: str, name: str) -> str:
    """How a file named in ``parent`` is shown: relative to the same place as ``parent``."""
    return os.path.normpath(Path(parent).parent / name)


class _Reader:
    def __init__(self) -> None:
        self.issues: list[MappingIssue] = []
        self._malformed: set[int] = set()  # id() of files whose structure has problems

    def read(self, path: Path, display: str) -> YamlFile | None:
        try:
            file = load_yaml_file(path, display)
        except MappingErrors as exc:
            self.issues.extend(exc.errors)
            return None
        if not isinstance(file.data, dict):
            self.issues.append(MappingIssue(display, 1, 1, "", "expected a mapping of keys"))
            return None
        structure = check_structure(file)
        if structure:
            self.issues.extend(structure)
            self._malformed.add(id(file))
        return file

    def layer(self, path: Path, display: str) -> Layer | None:
        file = self.read(path, display)
        if file is None:
            return None
        layer = Layer(file)
        self._gather(layer, file)
        self._includes(layer, file, path, {path.resolve()})
        return layer

    def _includes(self, layer: Layer, file: YamlFile, path: Path, seen: set[Path]) -> None:
        for i, name in enumerate(file.data.get("include") or []):
            if not isinstance(name, str):
                continue
            target = path.parent / name
            if target.resolve() in seen:
                self.issues.append(Node(file, ("include", i)).issue("include cycle or repeat"))
                continue
            seen.add(target.resolve())
            included = self.read(target, display_of(file.display, name))
            if included is None:
                continue
            root = Node(included, ())
            for key in _MAPPING_ONLY:
                if key in included.data:
                    msg = "a fragment file holds only include, catalogs and fragments"
                    self.issues.append(root.issue(msg, key, at="key"))
            self._gather(layer, included)
            self._includes(layer, included, target, seen)

    def _gather(self, layer: Layer, file: YamlFile) -> None:
        if id(file) in self._malformed:
            return  # already reported; the shapes below cannot be trusted
        for name, cat in (file.data.get("catalogs") or {}).items():
            node = Node(file, ("catalogs", name))
            if name in layer.catalogs:
                other = layer.catalogs[name].node.loc(at="key")
                self.issues.append(node.issue(f"catalog already defined at {other}", at="key"))
                continue
            raw = cat["values"]
            values = {str(v): str(v) for v in raw} if isinstance(raw, list) else dict(raw)
            layer.catalogs[name] = CatalogSpec(
                name, values, cat.get("default"), "default" in cat, node
            )
        for name in file.data.get("fragments") or {}:
            node = Node(file, ("fragments", name))
            if name in layer.fragments:
                other = layer.fragments[name].loc(at="key")
                self.issues.append(node.issue(f"fragment already defined at {other}", at="key"))
                continue
            layer.fragments[name] = node


def load_chain(path: Path, display: str) -> tuple[list[Layer], list[MappingIssue]]:
    """The layers of ``path``'s ``extends`` chain, the most basic first, and every problem.

    Each file is read once; a file that extends one already in the chain is an error at
    its ``extends`` line, naming the whole cycle.
    """
    reader = _Reader()
    chain: list[Layer] = []
    seen: list[tuple[Path, str]] = []
    while True:
        layer = reader.layer(path, display)
        if layer is None:
            break
        chain.append(layer)
        seen.append((path.resolve(), display))
        name = layer.data.get("extends")
        if not isinstance(name, str):
            break
        target, target_display = path.parent / name, display_of(display, name)
        where = Node(layer.file, ("extends",))
        if any(resolved == target.resolve() for resolved, _ in seen):
            start = next(i for i, (p, _) in enumerate(seen) if p == target.resolve())
            cycle = " → ".join([*(d for _, d in seen[start:]), target_display])
            reader.issues.append(where.issue(f"extends cycle: {cycle}"))
            break
        if not target.is_file():
            reader.issues.append(where.issue(f"cannot read {target_display}: no such file"))
            break
        path, display = target, target_display
    chain.reverse()
    return chain, reader.issues
