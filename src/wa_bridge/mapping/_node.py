"""A place in a loaded mapping file, possibly patched by a file that extends it.

Most nodes are a file and a key path. A field changed by an ``overrides`` entry of an
extending file is still one node, but some of its keys live in the other file: ``moved``
says which, so every key (and every problem found under it) points at the file and line
that holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from wa_bridge.mapping._schema import key_path
from wa_bridge.mapping._yaml import PathKey, YamlFile
from wa_bridge.mapping.issues import Loc, MappingIssue

__all__ = ["Node"]


@dataclass(frozen=True, slots=True)
class Node:
    """A place in a loaded file: enough to point at it or at any key below it.

    ``moved`` lists, in the order they were applied, keys just below this node whose value
    comes from another file (an override), each with the node that holds it there.
    """

    file: YamlFile
    keys: tuple[PathKey, ...]
    moved: tuple[tuple[PathKey, Node], ...] = ()

    def value(self) -> Any:
        """The plain data at this place (of this node's own file)."""
        data: Any = self.file.data
        for key in self.keys:
            data = data[key]
        return data

    def _moved(self, key: PathKey) -> Node | None:
        for name, node in reversed(self.moved):
            if name == key:
                return node
        return None

    def child(self, *more: PathKey) -> Node:
        """The node at ``more`` below this one, in whichever file holds it."""
        if not more:
            return self
        moved = self._moved(more[0])
        if moved is not None:
            return moved.child(*more[1:])
        return Node(self.file, (*self.keys, *more))

    def home(self, *names: PathKey) -> Node:
        """This node as last changed in any of ``names``: the override's own node when an
        extending file set one of them, else this node."""
        for name, node in reversed(self.moved):
            if name in names:
                return Node(node.file, node.keys[:-1])
        return self

    def loc(self, *more: PathKey, at: Literal["key", "value"] = "value") -> Loc:
        if more and (moved := self._moved(more[0])) is not None:
            return moved.loc(*more[1:], at=at)
        return self.file.loc((*self.keys, *more), at=at)

    def key(self, *more: PathKey) -> str:
        if more and (moved := self._moved(more[0])) is not None:
            return moved.key(*more[1:])
        return key_path((*self.keys, *more))

    def issue(
        self, message: str, *more: PathKey, at: Literal["key", "value"] = "value"
    ) -> MappingIssue:
        return MappingIssue.at(self.loc(*more, at=at), self.key(*more), message)
