"""Adopting a REST CRM's existing contacts: the contract's optional ``searchContacts``.

For the batch's contacts the book does not know and whose operations say how to find
them (a phone, an e-mail, as the mapping's ``match:`` asks), one ``POST /contacts/search``
per 100 contacts; each contact then adopts its best candidate
(:func:`~wa_bridge.connectors._matching.choose`), sent as ``adopt`` with its first
``upsert_contact``. A CRM without the operation (404, 405) is asked no more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import httpx

from wa_bridge.connectors._matching import Candidate, Choice, choose, modified_at
from wa_bridge.connectors._plan import MatchFacts
from wa_bridge.connectors.http import ErrorDialect, send
from wa_bridge.errors import CrmRejected
from wa_bridge.normalize.phone_forms import search_digits
from wa_bridge.operations import CrmOperation, MatchRule
from wa_bridge.store.book import RecordBook

__all__ = ["CONTACTS", "ContactSearch"]

CONTACTS: Final = "contacts"  # the book's kind for REST contacts
_PER_REQUEST: Final = 100
_NOT_OFFERED: Final = frozenset({404, 405})


@dataclass(slots=True)
class ContactSearch:
    """The search of one REST CRM; remembers when the CRM does not offer it."""

    client: httpx.AsyncClient
    errors: ErrorDialect
    match_order: tuple[MatchRule, ...]
    offered: bool = True

    async def adoptions(self, ops: Sequence[CrmOperation], book: RecordBook) -> dict[str, Choice]:
        """Contact key → the existing record it adopts, for the unknown contacts of ``ops``."""
        facts: dict[str, MatchFacts] = {}
        for op in ops:
            key = op.contact_key
            if op.kind == "upsert_contact" and key and not book.knows(CONTACTS, key):
                found = MatchFacts.of(op)
                old = facts.get(key, MatchFacts())
                facts[key] = MatchFacts(
                    found.phone_e164 or old.phone_e164, found.email or old.email
                )
        wanted = {k: f for k, f in facts.items() if self._findable(f)}
        if not wanted or not self.offered:
            return {}
        candidates: list[Candidate] = []
        keys = sorted(wanted)
        for start in range(0, len(keys), _PER_REQUEST):
            part = keys[start : start + _PER_REQUEST]
            answer = await self._search(part, [wanted[k] for k in part])
            if answer is None:
                return {}
            candidates += answer
        out: dict[str, Choice] = {}
        taken: set[str] = set()
        for key in keys:
            choice = choose(key, wanted[key], candidates, self.match_order, taken)
            if choice is not None and choice.rule != "key":  # by our key it is ours already
                taken.add(choice.candidate.crm_id)
                out[key] = choice
        return out

    def _findable(self, facts: MatchFacts) -> bool:
        return bool(
            ("phone" in self.match_order and facts.phone_e164)
            or ("email" in self.match_order and facts.email)
        )

    async def _search(
        self, keys: Sequence[str], facts: Sequence[MatchFacts]
    ) -> list[Candidate] | None:
        phones = sorted({d for f in facts if f.phone_e164 for d in search_digits(f.phone_e164)})
        emails = sorted({f.email.strip().lower() for f in facts if f.email})
        body = {"keys": list(keys), "phones": phones, "emails": emails}
        try:
            response = await send(
                self.client,
                "POST",
                "/contacts/search",
                dialect=self.errors,
                action="search contacts",
                json=body,
            )
        except CrmRejected as exc:
            if exc.status_code in _NOT_OFFERED:
                self.offered = False
                return None
            raise
        data = response.json()
        rows = data.get("results") if isinstance(data, dict) else None
        return [_candidate(row) for row in rows or [] if isinstance(row, dict) and row.get("id")]


def _candidate(row: dict[str, object]) -> Candidate:
    phones = row.get("phones")
    key, email = row.get("contact_key"), row.get("email")
    return Candidate(
        crm_id=str(row["id"]),
        key=str(key) if key else None,
        phones=tuple(str(p) for p in phones) if isinstance(phones, list) else (),
        email=str(email) if email else None,
        modified=modified_at(row.get("updated_at")),
    )
