"""How a mapping that ``extends`` another changes what it inherits.

Going down the chain (the most basic file first), each file may

- map an event type under ``events:``: its rules replace the inherited ones of that type;
- change single rules under ``overrides: <event type>: <rule>:``, where ``<rule>`` is the
  rule's ``id`` or, when the event type has one rule with that ``op``, the op. A rule
  override may set ``when`` (``null`` drops the condition) and ``fields``: each field given
  is merged key by key into the inherited field (a new source replaces the old source and
  its options; ``null`` removes a key), a field the rule lacks is added, and ``null`` in
  place of a field removes it.

Every key keeps the position of the file that set it, so a problem in an inherited key
names the base file and one in an override names the extending file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from wa_bridge.mapping._layers import Layer
from wa_bridge.mapping._node import Node
from wa_bridge.mapping._schema import suggest
from wa_bridge.mapping.expressions import OPTION_KEYS, SOURCE_KEYS
from wa_bridge.mapping.issues import MappingIssue

__all__ = ["EventRules", "merge_field", "resolve_events"]


@dataclass(slots=True)
class EventRules:
    """One event type's inherited rules (``"none"`` or a list) and the overrides per rule."""

    rules: Any
    node: Node
    patches: dict[int, list[Node]] = field(default_factory=dict)


def resolve_events(layers: list[Layer], issues: list[MappingIssue]) -> dict[str, EventRules]:
    """Per event type, the rules the chain ends with and the overrides to apply to each."""
    table: dict[str, EventRules] = {}
    for layer in layers:
        own = layer.data.get("events") or {}
        for event_type, rules in own.items():
            table[event_type] = EventRules(rules, Node(layer.file, ("events", event_type)))
        overrides = layer.data.get("overrides") or {}
        if overrides and "extends" not in layer.data:
            root = Node(layer.file, ())
            msg = "'overrides' change inherited rules: this file extends none; edit its events"
            issues.append(root.issue(msg, "overrides", at="key"))
            continue
        for event_type, selectors in overrides.items():
            where = Node(layer.file, ("overrides", event_type))
            if event_type in own:
                msg = f"this file maps {event_type} under 'events:': change that rule instead"
                issues.append(where.issue(msg, at="key"))
                continue
            inherited = table.get(event_type)
            if inherited is None:
                msg = f"no inherited rules for {event_type}; map it under 'events:'"
                issues.append(where.issue(msg, at="key"))
                continue
            for selector in selectors:
                index = _select(inherited, selector, where.child(selector), issues)
                if index is not None:
                    inherited.patches.setdefault(index, []).append(where.child(selector))
    return table


def _select(
    event: EventRules, selector: str, where: Node, issues: list[MappingIssue]
) -> int | None:
    if not isinstance(event.rules, list):
        msg = "the inherited mapping is 'none' (no rules); map it under 'events:' instead"
        issues.append(where.issue(msg, at="key"))
        return None
    by_id = [i for i, rule in enumerate(event.rules) if rule.get("id") == selector]
    by_op = [i for i, rule in enumerate(event.rules) if rule["op"] == selector]
    found = by_id or by_op
    if len(found) == 1:
        return found[0]
    if found:
        places = ", ".join(str(event.node.loc(i)) for i in found)
        ids = [event.rules[i]["id"] for i in found if "id" in event.rules[i]]
        how = (
            f"name one by its id: {', '.join(ids)}"
            if len(ids) == len(found)
            else "give the one to change an 'id' and name it by that"
        )
        msg = f"{len(found)} rules have op {selector!r} ({places}); {how}"
    else:
        names = [rule.get("id", rule["op"]) for rule in event.rules]
        hint = suggest(selector, names)
        msg = f"no rule {selector!r} here{hint}; the rules are: {', '.join(names) or 'none'}"
    issues.append(where.issue(msg, at="key"))
    return None


def merge_field(
    data: dict[str, Any], node: Node, change: dict[str, Any], where: Node
) -> tuple[dict[str, Any], Node]:
    """A field's ``data`` and ``node`` with the override ``change`` (found at ``where``)
    merged in: the keys it sets point at ``where``, the others keep their place.

    A change that names a source replaces the inherited source and its options; ``null``
    removes a key.
    """
    setting = {key: value for key, value in change.items() if value is not None}
    dropped = {key for key, value in change.items() if value is None}
    if any(key in SOURCE_KEYS for key in setting):
        dropped |= {key for key in data if key in SOURCE_KEYS or key in OPTION_KEYS}
    merged = {key: value for key, value in data.items() if key not in dropped}
    merged.update(setting)
    kept = tuple((key, moved) for key, moved in node.moved if key not in dropped | set(setting))
    moved = (*kept, *((key, where.child(key)) for key in setting))
    return merged, replace(node, moved=moved)
