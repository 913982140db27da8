"""Finding the person's existing CRM record before creating one (issue 9).

A vendor answers one lookup per batch with :class:`Candidate` records (whatever its search
found by our key, a phone form or an e-mail); :func:`choose` picks, for one contact, the
record to adopt, trying the mapping's ``match:`` rules in order:

- ``key``: the record carries our key (an earlier attempt wrote it): it is ours, whatever
  the order;
- ``phone``: one of the record's phone fields holds the contact's number in any stored
  form (:func:`wa_bridge.normalize.phone_forms.same_number`); failing that, with a remark
  or, for a mobile, an extension after it
  (:func:`~wa_bridge.normalize.phone_forms.holds_number`): a record that holds the bare
  number is the better one;
- ``email``: the record's e-mail is the contact's, case-insensitively.

A record carrying another of our keys belongs to another contact and is never adopted;
a record is adopted by one contact at most. Several candidates for the first rule that
finds any: the most recently modified wins (the decision and the count are recorded).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wa_bridge.connectors._plan import MatchFacts
from wa_bridge.normalize.phone_forms import holds_number, same_number
from wa_bridge.operations import MatchRule

__all__ = ["Candidate", "Choice", "choose", "modified_at"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """An existing CRM record a lookup found."""

    crm_id: str
    key: str | None  # our key property's value on it (None: not ours yet)
    phones: tuple[str, ...] = ()  # its phone fields, as stored
    email: str | None = None
    modified: float = 0.0  # last modified, seconds since the epoch
    values: Mapping[str, Any] = field(default_factory=dict)  # the fields the lookup read


@dataclass(frozen=True, slots=True)
class Choice:
    """The record a contact adopts, by which rule, among how many candidates; ``others``:
    the CRM ids of the candidates it did not adopt, most recently modified first."""

    candidate: Candidate
    rule: MatchRule
    candidates: int
    others: tuple[str, ...] = ()


def modified_at(text: Any) -> float:
    """A CRM's last-modified time (ISO 8601, ``Z`` or ``+0000``) in seconds; 0 if unreadable."""
    if not isinstance(text, str) or not text:
        return 0.0
    value = text.replace("Z", "+00:00")
    if len(value) > 5 and value[-5] in "+-" and value[-3] != ":":
        value = f"{value[:-2]}:{value[-2:]}"  # +0000 → +00:00
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return 0.0
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _hits(
    rule: MatchRule, key: str, facts: MatchFacts, candidates: Sequence[Candidate]
) -> list[Candidate]:
    if rule == "key":
        return [c for c in candidates if c.key == key]
    free = [c for c in candidates if not c.key]  # one with another key of ours is taken
    if rule == "phone" and facts.phone_e164:
        phone = facts.phone_e164
        plain = [c for c in free if any(same_number(p, phone) for p in c.phones if p)]
        return plain or [c for c in free if any(holds_number(p, phone) for p in c.phones if p)]
    if rule == "email" and facts.email:
        email = facts.email.strip().lower()
        return [c for c in free if c.email and c.email.strip().lower() == email]
    return []


def choose(
    key: str,
    facts: MatchFacts,
    candidates: Sequence[Candidate],
    order: Sequence[MatchRule],
    taken: Collection[str] = (),
) -> Choice | None:
    """The record contact ``key`` adopts, or None (create one). ``taken``: CRM ids other
    contacts of the batch adopted already.

    A record carrying our key is ours whatever the order says (it is the one an earlier
    attempt wrote: adopting another would duplicate it), so ``key`` is tried first.
    """
    rules: list[MatchRule] = ["key", *(r for r in order if r != "key")]
    for rule in rules:
        hits = [c for c in _hits(rule, key, facts, candidates) if c.crm_id not in taken]
        if hits:
            ranked = sorted(hits, key=lambda c: (c.modified, c.crm_id), reverse=True)
            others = tuple(c.crm_id for c in ranked[1:])
            return Choice(ranked[0], rule, len(hits), others)
    return None
