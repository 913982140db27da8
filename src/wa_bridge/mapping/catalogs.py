"""Catalogs: the values a CRM field allows, and how input values translate to them.

A catalog is either a list of allowed values or a map ``input → CRM value`` (WhatsApp
message type → CRM channel, inbox tag → CRM reason code). An input not listed gives the
catalog's ``default`` when it has one; otherwise it is an error for a field that uses the
catalog, and null for a ``lookup`` expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

__all__ = ["MISSING", "Catalog", "catalog_key"]

MISSING: Final = object()


def catalog_key(value: Any) -> str:
    """The text form an input value is looked up by (``true``, ``42``, ``text``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class Catalog:
    name: str
    values: dict[str, str]
    default: str | None
    has_default: bool

    def translate(self, value: Any) -> Any:
        """The CRM value for ``value``; the default when unknown; MISSING if no default."""
        found = self.values.get(catalog_key(value), MISSING)
        if found is MISSING and self.has_default:
            return self.default
        return found

    def lookup(self, value: Any) -> Any:
        """Like :meth:`translate`, but null instead of MISSING (for ``lookup`` expressions)."""
        if value is None:
            return None
        found = self.translate(value)
        return None if found is MISSING else found

    def describe(self) -> str:
        keys = list(self.values)
        shown = ", ".join(keys[:12]) + (", …" if len(keys) > 12 else "")
        return f"catalog {self.name!r} ({shown})"
