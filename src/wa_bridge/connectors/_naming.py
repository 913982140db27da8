"""How a record connector names the fields it writes: the rule both vendors fill in.

A mapped field is written to the vendor's own field when the vendor has one for it
(HubSpot's ``phone``, Salesforce's ``MobilePhone``), else to a custom field whose name the
vendor derives from the mapped field's (``wa_x``, ``WA_X__c``). A vendor states, per record
kind, only its own names (:class:`FieldNames`) and its custom-name rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from wa_bridge.operations import FieldValue

__all__ = ["FieldNames", "consent_names", "one_name"]


@dataclass(frozen=True, slots=True)
class FieldNames:
    """One record kind's field names in one vendor's CRM: called with a mapped field, the
    vendor's own name for it (``standard``), else ``custom(field)``."""

    custom: Callable[[str], str]
    standard: Mapping[str, str] = field(default_factory=dict)

    def __call__(self, name: str) -> str:
        return self.standard[name] if name in self.standard else self.custom(name)


def one_name(name: Callable[[str], str]) -> Callable[[str], Iterable[str]]:
    """``name`` as the one-name-per-field rule :func:`~._records.modes_of` takes."""
    return lambda field: (name(field),)


# A consent's time and evidence, by the suffix of their field's name (a short ``at``:
# Salesforce names are at most 40 characters, and ``..._Consent_Occurred_At`` is 41 for
# WhatsApp marketing).
_CONSENT_PARTS: Final = (("occurred_at", "at"), ("evidence", "evidence"))


def consent_names(
    fields: Mapping[str, FieldValue], custom: Callable[[str], str]
) -> dict[str, FieldValue]:
    """A ``set_consent``'s fields by the field they are written to: the status in
    ``custom("{channel}_{purpose}_consent")`` (defaults: whatsapp, marketing), its time
    and evidence in the same name with ``_at`` and ``_evidence``."""
    prefix = f"{fields.get('channel') or 'whatsapp'}_{fields.get('purpose') or 'marketing'}_consent"
    out = {custom(prefix): fields.get("status")}
    for name, suffix in _CONSENT_PARTS:
        if name in fields:
            out[custom(f"{prefix}_{suffix}")] = fields[name]
    return out
