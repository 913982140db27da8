"""A mapping file (and the fragment files it includes) → a typed, located spec.

Loading goes: read YAML with positions → check the structure against the JSON Schema →
follow ``include`` (paths relative to the including file) → gather catalogs and fragments
→ expand ``$use`` in each rule's fields. Every problem is collected with its own
``file:line:column`` (a field defined in a fragment keeps the fragment's position) and
raised together as :class:`MappingErrors`. The result holds no compiled code yet: see
:mod:`wa_bridge.mapping.engine`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wa_bridge.mapping._schema import check_structure, key_path, suggest
from wa_bridge.mapping._yaml import PathKey, YamlFile, load_yaml_file
from wa_bridge.mapping.issues import Loc, MappingErrors, MappingIssue

__all__ = ["CatalogSpec", "FieldSpec", "MappingSpec", "Node", "RuleSpec", "load_spec"]

_MAX_USE_DEPTH = 8


@dataclass(frozen=True, slots=True)
class Node:
    """A place in a loaded file: enough to point at it or at any key below it."""

    file: YamlFile
    keys: tuple[PathKey, ...]

    def loc(self, *more: PathKey, at: Literal["key", "value"] = "value") -> Loc:
        return self.file.loc((*self.keys, *more), at=at)

    def key(self, *more: PathKey) -> str:
        return key_path((*self.keys, *more))

    def issue(
        self, message: str, *more: PathKey, at: Literal["key", "value"] = "value"
    ) -> MappingIssue:
        return MappingIssue.at(self.loc(*more, at=at), self.key(*more), message)


@dataclass(frozen=True, slots=True)
class CatalogSpec:
    name: str
    values: dict[str, str]  # input → CRM value (an allowed-values list maps each to itself)
    default: str | None
    has_default: bool
    node: Node


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    data: dict[str, Any]
    node: Node


@dataclass(frozen=True, slots=True)
class RuleSpec:
    kind: str
    when: Any
    fields: tuple[FieldSpec, ...]
    node: Node


@dataclass(frozen=True, slots=True)
class MappingSpec:
    path: str
    connector: str
    catalogs: dict[str, CatalogSpec]
    rules: dict[str, tuple[RuleSpec, ...]]
    issues: tuple[MappingIssue, ...] = ()  # found while expanding; compile adds its own


class _Loader:
    def __init__(self) -> None:
        self.issues: list[MappingIssue] = []
        self.files: list[YamlFile] = []
        self._seen: set[Path] = set()
        self.catalogs: dict[str, CatalogSpec] = {}
        self.fragments: dict[str, Node] = {}

    def load(self, path: Path, display: str, *, is_main: bool) -> YamlFile | None:
        self._seen.add(path.resolve())
        try:
            file = load_yaml_file(path, display)
        except MappingErrors as exc:
            self.issues.extend(exc.errors)
            return None
        if not isinstance(file.data, dict):
            self.issues.append(MappingIssue(display, 1, 1, "", "expected a mapping of keys"))
            return None
        structure = check_structure(file)
        self.issues.extend(structure)
        self.files.append(file)
        self._check_kind(file, is_main=is_main)
        if not structure:
            self._gather(file)
        for i, name in enumerate(file.data.get("include") or []):
            if not isinstance(name, str):
                continue
            target = path.parent / name
            if target.resolve() in self._seen:
                self.issues.append(Node(file, ("include", i)).issue("include cycle or repeat"))
                continue
            self.load(target, _display(display, name), is_main=False)
        return file

    def _check_kind(self, file: YamlFile, *, is_main: bool) -> None:
        root = Node(file, ())
        if is_main:
            for key in ("connector", "events"):
                if key not in file.data:
                    self.issues.append(root.issue(f"{key!r} is required in a mapping file"))
            return
        for key in ("connector", "events"):
            if key in file.data:
                msg = "a fragment file holds only include, catalogs and fragments"
                self.issues.append(root.issue(msg, key, at="key"))

    def _gather(self, file: YamlFile) -> None:
        for name, cat in (file.data.get("catalogs") or {}).items():
            node = Node(file, ("catalogs", name))
            if name in self.catalogs:
                other = self.catalogs[name].node.loc(at="key")
                self.issues.append(node.issue(f"catalog already defined at {other}", at="key"))
                continue
            raw = cat["values"]
            values = {str(v): str(v) for v in raw} if isinstance(raw, list) else dict(raw)
            self.catalogs[name] = CatalogSpec(
                name, values, cat.get("default"), "default" in cat, node
            )
        for name in file.data.get("fragments") or {}:
            node = Node(file, ("fragments", name))
            if name in self.fragments:
                other = self.fragments[name].loc(at="key")
                self.issues.append(node.issue(f"fragment already defined at {other}", at="key"))
                continue
            self.fragments[name] = node

    def expand(self, fields: Node, depth: int = 0) -> list[FieldSpec]:
        """The fields of a ``fields`` mapping with every ``$use`` replaced by its fragment."""
        out: dict[str, FieldSpec] = {}
        data = _get(fields)
        for name, spec in (data or {}).items():
            if name != "$use":
                out[name] = FieldSpec(name, spec, Node(fields.file, (*fields.keys, name)))
                continue
            uses = [spec] if isinstance(spec, str) else list(spec)
            for i, use in enumerate(uses):
                where = ("$use",) if isinstance(spec, str) else ("$use", i)
                frag = self.fragments.get(use)
                if frag is None:
                    hint = suggest(use, [*self.fragments])
                    known = ", ".join(self.fragments) or "none defined"
                    msg = f"unknown fragment {use!r}{hint}; known: {known}"
                    self.issues.append(fields.issue(msg, *where))
                elif depth >= _MAX_USE_DEPTH:
                    self.issues.append(fields.issue("fragments $use each other in a loop", *where))
                else:
                    for item in self.expand(frag, depth + 1):
                        out[item.name] = item
        return list(out.values())


def _get(node: Node) -> Any:
    value: Any = node.file.data
    for key in node.keys:
        value = value[key]
    return value


def _display(parent: str, name: str) -> str:
    return os.path.normpath(Path(parent).parent / name)


def load_spec(path: str | Path) -> MappingSpec:
    """Load and check ``path`` and its includes; raise MappingErrors on structural problems.

    Problems found after the structure is known good (unknown fragments) travel in
    ``MappingSpec.issues`` so that compiling can report them together with its own.
    """
    loader = _Loader()
    main = loader.load(Path(path), str(path), is_main=True)
    if main is None or loader.issues:
        raise MappingErrors(loader.issues)
    rules: dict[str, tuple[RuleSpec, ...]] = {}
    for event_type, raw_rules in main.data["events"].items():
        if raw_rules == "none":
            rules[event_type] = ()
            continue
        built = []
        for i, rule in enumerate(raw_rules):
            node = Node(main, ("events", event_type, i))
            fields = loader.expand(Node(main, (*node.keys, "fields"))) if "fields" in rule else []
            if rule["op"] == "none" and fields:
                loader.issues.append(node.issue("op 'none' takes no fields", "fields", at="key"))
            built.append(RuleSpec(rule["op"], rule.get("when"), tuple(fields), node))
        rules[event_type] = tuple(built)
    issues = tuple(loader.issues)
    return MappingSpec(str(path), main.data["connector"], loader.catalogs, rules, issues)
