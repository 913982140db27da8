"""Contacts that look like one person (``wa-bridge identity report``), with the evidence.

The identity graph never merges contacts on its own; these are the traces two contacts of
one person leave, each a rule of :data:`Rule`:

- ``phone_variant``: each holds a phone that is a variant of the other's (Mexico with and
  without the mobile ``1``, Argentina with and without the ``9``): contacts made before
  the folding rule existed, or by a release without it. KEEP holds the form new events
  use (:func:`~wa_bridge.normalize.phones.user_e164`).
- ``moved``: identifiers moved from OTHER to KEEP (``identity_events`` ``moved``): a
  BSUID later seen with the phone of a phone-only contact, a number-change notice that
  arrived after the new identity had already written. A move between two contacts that
  each hold their own, different BSUID in one business is a number given to a stranger
  (Meta recycles numbers): not reported.
- ``orphaned``: OTHER holds no identifier any more, and one it held is KEEP's now (the
  same traces as ``moved``, found from the links alone, e.g. after ``identity_events``
  were purged).

Brazil's 12- and 13-digit numbers are never reported as variants: they may be two people.
Contacts merged already (``identity_merges``) are left out. Values are returned raw for
the caller to mask (``wa_bridge.ops.identity``); nothing here logs them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from wa_bridge.normalize.phone_forms import variants
from wa_bridge.normalize.phones import user_e164
from wa_bridge.store._bulk import members
from wa_bridge.store.identity_map import STRONG_KINDS
from wa_bridge.store.merges import active_merges
from wa_bridge.store.tables import cases, contacts, identities, identity_events

__all__ = ["ContactFacts", "Evidence", "Lookalike", "Rule", "find_lookalikes"]

Rule = Literal["phone_variant", "moved", "orphaned"]
_ORDER: Final[dict[Rule, int]] = {"orphaned": 0, "moved": 1, "phone_variant": 2}


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why two contacts look like one person. ``keep_value`` / ``other_value``: the
    identifier as each holds (or held) it, raw; ``count``/``at``: how many moves and the
    last one; ``detail``: the moves' hashed identifiers, as ``identity_events`` keeps them."""

    rule: Rule
    kind: str
    keep_value: str | None = None
    other_value: str | None = None
    count: int = 1
    at: datetime | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ContactFacts:
    """One contact as the report shows it: its current identifiers (kind, raw value) and
    how many cases it has."""

    contact_id: str
    created_at: datetime | None = None
    current: tuple[tuple[str, str], ...] = ()
    cases: int = 0


@dataclass(frozen=True, slots=True)
class Lookalike:
    """Two contacts that look like one person: merge ``other`` into ``keep`` (the one
    later events land on)."""

    keep: ContactFacts
    other: ContactFacts
    evidence: tuple[Evidence, ...] = field(default=())

    @property
    def last_seen(self) -> datetime | None:
        times = [e.at for e in self.evidence if e.at is not None]
        return max(times) if times else None


Pair = tuple[str, str]  # (keep, other)


async def find_lookalikes(conn: AsyncConnection, *, limit: int = 200) -> list[Lookalike]:
    """Pairs of contacts that look like one person (see the module rules), the most
    recently evidenced first, at most ``limit``."""
    found: dict[frozenset[str], tuple[Pair, list[Evidence]]] = {}
    for pair, evidence in [
        *await _orphaned(conn),
        *await _moved(conn),
        *await _phone_variants(conn),
    ]:
        slot = found.setdefault(frozenset(pair), (pair, []))
        slot[1].append(evidence)
    merged = await active_merges(conn)
    pairs = [
        (pair, sorted(ev, key=lambda e: _ORDER[e.rule]))
        for pair, ev in found.values()
        if pair[0] not in merged and pair[1] not in merged
    ]
    facts = await _facts(conn, {cid for pair, _ in pairs for cid in pair})
    out = [Lookalike(facts[keep], facts[other], tuple(ev)) for (keep, other), ev in pairs]
    out.sort(key=lambda x: (x.last_seen is not None, x.last_seen or datetime.min), reverse=True)
    return out[:limit]


async def _phone_variants(conn: AsyncConnection) -> list[tuple[Pair, Evidence]]:
    t = identities.c
    rows = await conn.execute(
        select(t.value, t.contact_id).where(
            t.kind == "phone", t.is_current, or_(t.value.like("+52%"), t.value.like("+54%"))
        )
    )
    groups: dict[str, dict[str, str]] = {}  # canonical form → value → holder
    for value, contact_id in rows:
        forms = variants(str(value))
        if len(forms) < 2:
            continue
        canonical = user_e164(str(value)) or min(forms)
        groups.setdefault(canonical, {})[str(value)] = str(contact_id)
    out: list[tuple[Pair, Evidence]] = []
    for canonical, holders in groups.items():
        keep = holders.get(canonical)
        if keep is None:
            continue  # nobody holds the form new events use: they will open it
        for value, other in sorted(holders.items()):
            if other != keep:
                out.append(((keep, other), Evidence("phone_variant", "phone", canonical, value)))
    return out


async def _moved(conn: AsyncConnection) -> list[tuple[Pair, Evidence]]:
    e = identity_events.c
    rows = await conn.execute(
        select(e.contact_id, e.kinds, e.detail, e.at).where(e.decision == "moved").order_by(e.at)
    )
    moves: dict[Pair, list[tuple[str, str, datetime]]] = {}
    for keep, kinds, detail, at in rows:
        parts = dict(p.split("=", 1) for p in str(detail or "").split() if "=" in p)
        other = parts.get("from")
        if other and other != keep:
            moves.setdefault((str(keep), other), []).append((str(kinds), parts.get("id", ""), at))
    strong = await _strong(conn, {cid for pair in moves for cid in pair})
    out: list[tuple[Pair, Evidence]] = []
    for (keep, other), seen in moves.items():
        if _strangers(strong.get(keep, {}), strong.get(other, {})):
            continue
        kinds = ",".join(sorted({k for k, _, _ in seen}))
        ids = ",".join(dict.fromkeys(i for _, i, _ in seen if i))
        out.append(
            ((keep, other), Evidence("moved", kinds, count=len(seen), at=seen[-1][2], detail=ids))
        )
    return out


def _strangers(a: dict[tuple[str, str], set[str]], b: dict[tuple[str, str], set[str]]) -> bool:
    """Each holds its own BSUID (or parent) in one business, and they differ."""
    return any(slot in b and not (values & b[slot]) for slot, values in a.items())


async def _strong(
    conn: AsyncConnection, contact_ids: Iterable[str]
) -> dict[str, dict[tuple[str, str], set[str]]]:
    """Current BSUIDs and parent BSUIDs per contact, by (business, kind)."""
    t = identities.c
    out: dict[str, dict[tuple[str, str], set[str]]] = {}
    for clause in members(conn, t.contact_id, sorted(contact_ids)):
        rows = await conn.execute(
            select(t.contact_id, t.business, t.kind, t.value).where(
                clause, t.is_current, t.kind.in_(sorted(STRONG_KINDS))
            )
        )
        for cid, business, kind, value in rows:
            out.setdefault(str(cid), {}).setdefault((business, kind), set()).add(str(value))
    return out


async def _orphaned(conn: AsyncConnection) -> list[tuple[Pair, Evidence]]:
    t = identities.c
    held = select(identities.c.contact_id).where(
        identities.c.contact_id == contacts.c.contact_id, identities.c.is_current
    )
    orphans = [
        str(c)
        for c in (await conn.execute(select(contacts.c.contact_id).where(~exists(held)))).scalars()
    ]
    now = identities.alias("now")
    out: list[tuple[Pair, Evidence]] = []
    for clause in members(conn, t.contact_id, orphans):
        rows = await conn.execute(
            select(now.c.contact_id, t.contact_id, t.kind, t.value, t.replaced_at)
            .join(
                now,
                and_(
                    now.c.business == t.business,
                    now.c.kind == t.kind,
                    now.c.value == t.value,
                    now.c.is_current,
                ),
            )
            .where(clause, ~t.is_current)
        )
        for keep, other, kind, value, at in rows:
            if keep != other:
                pair = (str(keep), str(other))
                out.append((pair, Evidence("orphaned", str(kind), str(value), str(value), at=at)))
    return out


async def _facts(conn: AsyncConnection, contact_ids: set[str]) -> dict[str, ContactFacts]:
    ids = sorted(contact_ids)
    created: dict[str, datetime] = {}
    current: dict[str, list[tuple[str, str]]] = {}
    counts: dict[str, int] = {}
    t = identities.c
    for clause in members(conn, contacts.c.contact_id, ids):
        created.update(
            (str(c), at)
            for c, at in await conn.execute(
                select(contacts.c.contact_id, contacts.c.created_at).where(clause)
            )
        )
    for clause in members(conn, t.contact_id, ids):
        rows = await conn.execute(select(t.contact_id, t.kind, t.value).where(clause, t.is_current))
        for cid, kind, value in rows:
            current.setdefault(str(cid), []).append((str(kind), str(value)))
    for clause in members(conn, cases.c.contact_id, ids):
        counted = await conn.execute(
            select(cases.c.contact_id, func.count()).where(clause).group_by(cases.c.contact_id)
        )
        counts.update((str(c), int(n)) for c, n in counted)
    return {
        cid: ContactFacts(
            cid, created.get(cid), tuple(sorted(current.get(cid, []))), counts.get(cid, 0)
        )
        for cid in ids
    }
