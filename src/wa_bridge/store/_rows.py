"""Records from rows: a store dataclass whose fields are named like its table's columns."""

from __future__ import annotations

from dataclasses import Field, fields
from typing import Any, ClassVar, Protocol, TypeVar

__all__ = ["record_of"]


class _Dataclass(Protocol):
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]


R = TypeVar("R", bound=_Dataclass)


def record_of(cls: type[R], row: Any, **given: Any) -> R:
    """``cls`` with each field read from the column of its name in ``row``, except the
    fields in ``given`` (a conversion, or a value no column holds)."""
    return cls(
        **{f.name: given[f.name] if f.name in given else getattr(row, f.name) for f in fields(cls)}
    )
