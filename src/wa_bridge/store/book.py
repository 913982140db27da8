"""The record book: what wa-bridge knows of one CRM's records, for one batch.

For each of our keys (a contact, case or note key) and each kind of CRM record (the
connector's word: ``contacts``, ``Contact``, ``tickets``…), the book holds a
:class:`KnownRecord`: the CRM's id of the record, how we came to own it (created it,
found it by our key, adopted it by phone or e-mail), which ``if_empty`` fields are known
to hold a value there, and a short hash of the last value we wrote to each field.

The worker loads a batch's book from table ``crm_records`` in one SELECT before it calls
the connector (:mod:`wa_bridge.store.crm_records`), the connector updates it as it
writes (:meth:`RecordBook.remember`, :meth:`RecordBook.forget`), and the worker saves the
changes in the batch's transaction. After a rollback the book's changes are lost, but
each record carries our key in the CRM, so the next attempt finds it again by key.

Pure: no I/O. Never holds raw values, only hashes (:func:`value_hash`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, get_args

import orjson

__all__ = ["MATCH_KINDS", "KnownRecord", "MatchDecision", "MatchKind", "RecordBook", "value_hash"]

# How wa-bridge came to own a CRM record: it created it; found it by our key property
# (written by an earlier attempt); or adopted a record the company had, by phone or e-mail.
MatchKind = Literal["created", "key", "phone", "email"]
MATCH_KINDS: Final[tuple[str, ...]] = get_args(MatchKind)

_HASH_CHARS: Final = 16


def value_hash(value: Any) -> str:
    """A short, stable hash of a field value as sent to the CRM (JSON, keys sorted)."""
    raw = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(raw).hexdigest()[:_HASH_CHARS]


@dataclass(frozen=True, slots=True)
class KnownRecord:
    """One CRM record we own: its id, how we came to own it, the ``if_empty`` fields known
    to hold a value, and field → :func:`value_hash` of the last value we wrote."""

    crm_id: str
    match: MatchKind = "created"
    filled: frozenset[str] = frozenset()
    written: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MatchDecision:
    """A contact adopted an existing CRM record: by which rule, among how many candidates
    (the most recently modified won), and the CRM ids of the ones it did not adopt
    (``others``). Saved to ``identity_events`` (ids only)."""

    kind: str
    key: str
    crm_id: str
    rule: MatchKind
    candidates: int
    others: tuple[str, ...] = ()


Slot = tuple[str, str]  # (kind, key)


class RecordBook:
    """(kind, key) → :class:`KnownRecord` for the CRM instance ``crm``, with the changes
    made since it was loaded (:meth:`changes`)."""

    def __init__(self, crm: str, known: Iterable[tuple[str, str, KnownRecord]] = ()) -> None:
        self.crm = crm
        self._known: dict[Slot, KnownRecord] = {(k, key): r for k, key, r in known}
        self._changed: set[Slot] = set()
        self._forgotten: set[Slot] = set()
        self._decisions: list[MatchDecision] = []

    def __repr__(self) -> str:  # keys only: no values, and few of them
        return f"RecordBook(crm={self.crm!r}, known={len(self._known)})"

    def __len__(self) -> int:
        return len(self._known)

    def get(self, kind: str, key: str) -> KnownRecord | None:
        return self._known.get((kind, key))

    def knows(self, kind: str, key: str) -> bool:
        return (kind, key) in self._known

    def remember(
        self,
        kind: str,
        key: str,
        crm_id: str,
        *,
        match: MatchKind | None = None,
        filled: Iterable[str] = (),
        written: Mapping[str, str] | None = None,
    ) -> KnownRecord:
        """Record that ``key``'s ``kind`` record is ``crm_id``.

        For the id already known, ``filled`` is added, ``written`` merged over what was
        written before, and ``match`` kept unless given. For another id (the record was
        recreated) the entry starts again from what is given (``match`` ``created`` by
        default).
        """
        slot = (kind, key)
        old = self._known.get(slot)
        if old is not None and old.crm_id == crm_id:
            new = replace(
                old,
                match=match or old.match,
                filled=old.filled | frozenset(filled),
                written={**old.written, **(written or {})},
            )
        else:
            new = KnownRecord(crm_id, match or "created", frozenset(filled), dict(written or {}))
        if new != old:
            self._known[slot] = new
            self._changed.add(slot)
            self._forgotten.discard(slot)
        return new

    def forget(self, kind: str, key: str) -> None:
        """The record is gone from the CRM (deleted there): the next write creates it."""
        slot = (kind, key)
        if self._known.pop(slot, None) is not None:
            self._forgotten.add(slot)
        self._changed.discard(slot)

    def note_match(
        self,
        kind: str,
        key: str,
        rule: MatchKind,
        candidates: int,
        others: Sequence[str] = (),
    ) -> None:
        """Record that ``key`` adopted its known ``kind`` record by ``rule`` among
        ``candidates``, leaving the records ``others`` (after :meth:`remember`)."""
        known = self._known.get((kind, key))
        if known is not None:
            decision = MatchDecision(kind, key, known.crm_id, rule, candidates, tuple(others))
            self._decisions.append(decision)

    def decisions(self) -> list[MatchDecision]:
        """The adoptions noted since load or :meth:`saved`."""
        return list(self._decisions)

    def changes(self) -> tuple[list[tuple[str, str, KnownRecord]], list[Slot]]:
        """(entries remembered or changed, entries forgotten) since load or :meth:`saved`."""
        changed = [(kind, key, self._known[(kind, key)]) for kind, key in sorted(self._changed)]
        return changed, sorted(self._forgotten)

    def saved(self) -> None:
        """The changes are stored: :meth:`changes` starts empty again."""
        self._changed.clear()
        self._forgotten.clear()
        self._decisions.clear()
