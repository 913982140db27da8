"""A mapping file (the files it extends, and the fragment files they include) → a typed,
located spec.

Loading goes: read YAML with positions → check each file's structure against the JSON
Schema → follow ``extends`` and ``include`` (paths relative to the file naming them) →
gather catalogs and fragments (an extending file may replace inherited ones by name) →
take each event type's rules from the last file that maps it → expand ``$use`` in each
rule's fields → apply the ``overrides`` of the extending files (see
:mod:`wa_bridge.mapping._overrides`). Every problem is collected with its own
``file:line:column`` (a field defined in a fragment or a base file keeps that file's
position; a key an override sets points at the override) and raised together as
:class:`MappingErrors`. The result holds no compiled code yet: see
:mod:`wa_bridge.mapping.engine`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wa_bridge.mapping._layers import CatalogSpec, Layer, load_chain
from wa_bridge.mapping._node import Node
from wa_bridge.mapping._overrides import EventRules, merge_field, resolve_events
from wa_bridge.mapping._schema import suggest
from wa_bridge.mapping.issues import MappingErrors, MappingIssue

__all__ = ["CatalogSpec", "FieldSpec", "MappingSpec", "Node", "RuleSpec", "load_spec"]

_MAX_USE_DEPTH = 8


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
    id: str | None = None


@dataclass(frozen=True, slots=True)
class MappingSpec:
    """A resolved mapping: ``connector`` is None for a base mapping (one only extended);
    ``extends`` lists the files it inherits from, the nearest first."""

    path: str
    connector: str | None
    catalogs: dict[str, CatalogSpec]
    rules: dict[str, tuple[RuleSpec, ...]]
    issues: tuple[MappingIssue, ...] = ()  # found while expanding; compile adds its own
    extends: tuple[str, ...] = ()


def _expand(
    fields: Node, fragments: dict[str, Node], issues: list[MappingIssue], depth: int = 0
) -> list[FieldSpec]:
    """The fields of a ``fields`` mapping with every ``$use`` replaced by its fragment."""
    out: dict[str, FieldSpec] = {}
    for name, spec in (fields.value() or {}).items():
        if name != "$use":
            out[name] = FieldSpec(name, spec, fields.child(name))
            continue
        uses = [spec] if isinstance(spec, str) else list(spec)
        for i, use in enumerate(uses):
            where = ("$use",) if isinstance(spec, str) else ("$use", i)
            frag = fragments.get(use)
            if frag is None:
                hint = suggest(use, [*fragments])
                known = ", ".join(fragments) or "none defined"
                msg = f"unknown fragment {use!r}{hint}; known: {known}"
                issues.append(fields.issue(msg, *where))
            elif depth >= _MAX_USE_DEPTH:
                issues.append(fields.issue("fragments $use each other in a loop", *where))
            else:
                for item in _expand(frag, fragments, issues, depth + 1):
                    out[item.name] = item
    return list(out.values())


def _patch(rule: RuleSpec, patch: Node, issues: list[MappingIssue]) -> RuleSpec:
    """``rule`` with one rule override (``when``, ``fields``) applied."""
    change = patch.value() or {}
    when, node = rule.when, rule.node
    if "when" in change:
        when = change["when"]
        node = Node(node.file, node.keys, (*node.moved, ("when", patch.child("when"))))
    if "fields" not in change:
        return RuleSpec(rule.kind, when, rule.fields, node, rule.id)
    if rule.kind == "none":
        issues.append(patch.issue("op 'none' takes no fields", "fields", at="key"))
    fields = {f.name: f for f in rule.fields}
    for name, field_change in (change["fields"] or {}).items():
        where = patch.child("fields", name)
        current = fields.get(name)
        if field_change is None:
            if fields.pop(name, None) is None:
                issues.append(where.issue(f"no inherited field {name!r} to remove", at="key"))
        elif current is None:
            data = {k: v for k, v in field_change.items() if v is not None}
            fields[name] = FieldSpec(name, data, where)
        else:
            fields[name] = FieldSpec(
                name, *merge_field(current.data, current.node, field_change, where)
            )
    return RuleSpec(rule.kind, when, tuple(fields.values()), node, rule.id)


def _rules(
    event: EventRules, fragments: dict[str, Node], issues: list[MappingIssue]
) -> tuple[RuleSpec, ...]:
    if not isinstance(event.rules, list):
        return ()  # "none"
    built = []
    for i, rule in enumerate(event.rules):
        node = event.node.child(i)
        fields = _expand(node.child("fields"), fragments, issues) if "fields" in rule else []
        if rule["op"] == "none" and fields:
            issues.append(node.issue("op 'none' takes no fields", "fields", at="key"))
        spec = RuleSpec(rule["op"], rule.get("when"), tuple(fields), node, rule.get("id"))
        for patch in event.patches.get(i, []):
            spec = _patch(spec, patch, issues)
        built.append(spec)
    return tuple(built)


def _required(layers: list[Layer], *, allow_base: bool) -> list[MappingIssue]:
    root = Node(layers[-1].file, ())
    issues = []
    if not allow_base and not any("connector" in layer.data for layer in layers):
        issues.append(root.issue("'connector' is required in a mapping file"))
    if not any("events" in layer.data for layer in layers):
        issues.append(root.issue("'events' is required in a mapping file"))
    return issues


def load_spec(path: str | Path, *, allow_base: bool = False) -> MappingSpec:
    """Load and check ``path``, the files it extends and their includes; raise
    MappingErrors on structural problems.

    ``allow_base`` accepts a mapping with no ``connector`` in its chain (a base mapping,
    meant to be extended); its ``connector`` is then None. Problems found after the
    structure is known good (unknown fragments, overrides that match no rule) travel in
    ``MappingSpec.issues`` so that compiling can report them together with its own.
    """
    layers, issues = load_chain(Path(path), str(path))
    if layers and "extends" not in layers[0].data:  # else the chain broke, as reported
        issues.extend(_required(layers, allow_base=allow_base))
    if not layers or issues:
        raise MappingErrors(issues)
    catalogs: dict[str, CatalogSpec] = {}
    fragments: dict[str, Node] = {}
    for layer in layers:
        catalogs.update(layer.catalogs)
        fragments.update(layer.fragments)
    events = resolve_events(layers, issues)
    rules = {event_type: _rules(event, fragments, issues) for event_type, event in events.items()}
    connector = next(
        (lay.data["connector"] for lay in reversed(layers) if "connector" in lay.data), None
    )
    extends = tuple(layer.file.display for layer in reversed(layers[:-1]))
    return MappingSpec(str(path), connector, catalogs, rules, tuple(issues), extends)
