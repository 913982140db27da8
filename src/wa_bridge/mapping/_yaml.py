"""YAML with positions: plain data for the logic, the round-trip tree for ``file:line:col``.

ruamel's round-trip loader records where every key, value and list item starts. We keep
that tree only to answer "where is this path?" and hand the rest of the code plain dicts,
lists and scalars (so jsonschema and the compiler never see ruamel's subclasses).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from wa_bridge.mapping.issues import Loc, MappingErrors, MappingIssue

__all__ = ["PathKey", "YamlFile", "load_yaml_file", "render_time", "to_plain"]

PathKey = str | int


def render_time(moment: datetime) -> str:
    """RFC 3339, with ``Z`` for UTC: how times print in tests, dry-runs and YAML data."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def to_plain(node: Any) -> Any:
    """Deep-convert a ruamel round-trip tree to dicts, lists, str, int, float, bool, None."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, datetime):
        moment = node if node.tzinfo is not None else node.replace(tzinfo=UTC)
        return render_time(moment)
    if isinstance(node, date):
        return node.isoformat()
    return str(node)


class YamlFile:
    """One loaded file: ``data`` (plain) and :meth:`loc` (position of a key path)."""

    def __init__(self, display: str, path: Path, tree: Any) -> None:
        self.display = display
        self.path = path
        self._tree = tree
        self.data: Any = to_plain(tree)

    def loc(self, keys: Sequence[PathKey], at: Literal["key", "value"] = "value") -> Loc:
        """Where ``keys`` sits; the deepest position known when the path runs out."""
        node = self._tree
        line, col = 0, 0
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            lc = getattr(node, "lc", None)
            if lc is None:
                break
            if isinstance(node, dict) and key in node:
                pos = lc.key(key) if (last and at == "key") else lc.value(key)
                if pos is None:
                    break
                line, col = pos
                node = node[key]
            elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
                line, col = lc.item(key)
                node = node[key]
            else:
                break
        return Loc(self.display, line + 1, col + 1)


def load_yaml_file(path: Path, display: str) -> YamlFile:
    """Parse ``path``; a missing file or a YAML syntax error raises MappingErrors."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise MappingErrors(
            [MappingIssue(display, 1, 1, "", f"cannot read file: {reason}")]
        ) from exc
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        col = mark.column + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        issue = MappingIssue(display, line, col, "", f"YAML syntax error: {problem}")
        raise MappingErrors([issue]) from exc
    except Exception as exc:  # ruamel raises a few non-marked errors (duplicate keys, ...)
        issue = MappingIssue(display, 1, 1, "", f"YAML error: {exc}")
        raise MappingErrors([issue]) from exc
    return YamlFile(display, path, tree)
