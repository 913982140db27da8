"""Load-time problems of a mapping file, each pinned to ``file:line:column``.

A developer fixes a mapping from these messages alone, so every issue names the file, the
1-based line and column, the key path (``events/whatsapp.message.received/0/fields/name``)
and what was expected. :class:`MappingErrors` carries all of them at once: one run of
``wa-bridge mappings validate`` shows every problem, not just the first.
"""

from __future__ import annotations

from dataclasses import dataclass

from wa_bridge.errors import ConfigError

__all__ = ["Loc", "MappingErrors", "MappingIssue"]


@dataclass(frozen=True, slots=True)
class Loc:
    """A place in a mapping file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    @property
    def short(self) -> str:
        """``file:line``, as shown in dead-letter reasons and ``CrmOperation.source``."""
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class MappingIssue(Loc):
    """One problem: where it is (the :class:`Loc` it extends), which key, and what was
    expected."""

    key: str
    message: str

    @classmethod
    def at(cls, loc: Loc, key: str, message: str) -> MappingIssue:
        return cls(loc.file, loc.line, loc.column, key, message)

    def __str__(self) -> str:
        where = Loc.__str__(self)  # not super(): slots=True rebuilds the class
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class MappingErrors(ConfigError):
    """A mapping file (or a file it includes) is invalid; ``errors`` lists every problem."""

    def __init__(self, errors: list[MappingIssue]) -> None:
        self.errors = sorted(errors, key=lambda i: (i.file, i.line, i.column, i.key))
        count = len(self.errors)
        head = f"{count} error{'s' if count != 1 else ''} in mapping"
        super().__init__("\n".join([head, *(str(e) for e in self.errors)]))
