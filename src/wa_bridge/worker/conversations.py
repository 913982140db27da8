"""Conversations as the business sees them: when a case opens and closes, what it measures.

One case per conversation of a contact with a business number (``store.cases``). The
rules, applied to a batch's events in order:

- A customer's message opens a case when the contact has none open on that number, else
  continues it: the customer-service window (``conversation_window_s``, 24 h by default)
  then runs from this message. The case keeps the touch that opened it (``attribution``);
  the contact keeps its first touch ever (set once, never overwritten).
- Any event of the contact on that number first closes an open case whose window has
  lapsed (``closed``, reason ``lapsed``); so does a ``conversation.window.check`` the
  sweep (:mod:`.sweep`) sends through the bus, in order with the contact's events.
- ``resolved`` / ``converted`` close the case (``resolved``); a late one on a lapsed case
  turns it into a resolved one; nothing reopens a case or opens a second one for it.
- Inbox events land on the case bound to the conversation id they name, else on the open
  case (binding the id to it), else on the latest case (a late event: it never reopens);
  an id nobody knows after the latest case is long closed is a new conversation.
- Messages the business sent (echoes, and the first status of a message the API sent)
  land on the open case and never open or extend the window. The first one after the
  customer's first message is the first response (FRT); a handoff from a bot to an agent
  discards a bot's earlier answer, so FRT is the customer's wait for a person.
- Handling time: opened → resolved. First-contact resolution (FCR): resolved without the
  customer coming back within the window after the previous case closed (a repeat
  contact: its case is not FCR, and a repeat turns the previous case's FCR off).
- Past chats imported at onboarding (``whatsapp.history.*``) have no case and no FRT.

For the CRM, every case whose visible state changed gets one ``conversation.case.updated``
event per batch, which the mapping turns into operations like any event (the pipeline
gives them the event that made the change as their own). Figures for the metrics are
collected here and exported by :func:`observe` once the batch has committed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from wa_bridge.events import CanonicalEvent
from wa_bridge.metrics import (
    CONVERSATION_CSAT,
    CONVERSATION_FIRST_RESPONSE_SECONDS,
    CONVERSATION_HANDLING_SECONDS,
    CONVERSATIONS_CLOSED,
    CONVERSATIONS_OPENED,
)
from wa_bridge.normalize.meta import rfc3339 as utc_rfc3339
from wa_bridge.store.api import (
    CaseRecord,
    CaseSet,
    CloseReason,
    FirstTouch,
    StoreTx,
)
from wa_bridge.store.cases import case_key_for
from wa_bridge.worker import facts

if TYPE_CHECKING:
    from wa_bridge.settings import Settings

__all__ = [
    "CASE_SOURCE",
    "ConversationOptions",
    "Derived",
    "Figures",
    "Tracked",
    "observe",
    "rfc3339",
    "track",
]

CASE_SOURCE: Final = "wa-bridge:worker"
_ANSWERS: Final = frozenset({"sent", "delivered", "read", "played"})  # not "failed"
Pair = tuple[str, str]  # (contact id, business number)


@dataclass(frozen=True, slots=True)
class ConversationOptions:
    window: timedelta = timedelta(hours=24)

    @classmethod
    def from_settings(cls, settings: Settings) -> ConversationOptions:
        return cls(window=timedelta(seconds=settings.conversation_window_s))


@dataclass(slots=True)
class Figures:
    """The batch's service figures, for the metrics once it has committed."""

    opened: int = 0
    closed_first_contact: list[bool] = field(default_factory=list)
    frt_s: list[int] = field(default_factory=list)
    handling_s: list[int] = field(default_factory=list)
    csat: list[int] = field(default_factory=list)

    def merge(self, other: Figures) -> None:
        self.opened += other.opened
        self.closed_first_contact += other.closed_first_contact
        self.frt_s += other.frt_s
        self.handling_s += other.handling_s
        self.csat += other.csat


@dataclass(frozen=True, slots=True)
class Derived:
    """A ``conversation.case.updated`` event, the event that made the change (whose id
    its operations carry), and the case it is about."""

    event: CanonicalEvent
    trigger_id: str
    case: CaseRecord


@dataclass(slots=True)
class Tracked:
    """What a batch did to its conversations: each event's case, the case updates to map."""

    case_keys: dict[str, str] = field(default_factory=dict)
    derived: list[Derived] = field(default_factory=list)
    figures: Figures = field(default_factory=Figures)


# A case's times are formatted for its snapshot before and after each batch (~2 per
# event, 1.2 µs each): the same few moments again and again, so UTC ones (all that the
# store gives back) are cached. Only UTC ones: two moments in another zone with a fold (a
# clock set back) compare and hash equal when only ``fold`` tells them apart, yet are an
# hour apart.
_cached_utc_rfc3339: Final = lru_cache(maxsize=1 << 14)(utc_rfc3339)


def rfc3339(moment: datetime | None) -> str | None:
    """``moment`` as RFC 3339 UTC text (``normalize.meta.rfc3339``: a naive one is taken as
    UTC), or None."""
    if moment is None:
        return None
    return _cached_utc_rfc3339(moment) if moment.tzinfo is UTC else utc_rfc3339(moment)


# The last moment a time column holds: an event may be dated up to it (the inbox takes
# any RFC 3339 time, a webhook any epoch up to 9999-12-31), and a window from there must
# not overflow the batch.
_LAST: Final = datetime.max.replace(tzinfo=UTC)


def _later(at: datetime, span: timedelta) -> datetime:
    """``at + span``, or the last moment there is when that is past it."""
    return _LAST if at > _LAST - span else at + span


def _seconds(later: datetime, earlier: datetime) -> int:
    return max(0, round((later - earlier).total_seconds()))


def _snapshot(case: CaseRecord) -> dict[str, Any]:
    """What the CRM sees of a case (a change of any of it is written)."""
    return {
        "status": case.status,
        "opened_at": rfc3339(case.opened_at),
        "opened_by": case.opened_by,
        "closed_at": rfc3339(case.closed_at),
        "close_reason": case.close_reason,
        "conversation_id": case.conversation_id,
        "first_inbound_at": rfc3339(case.first_inbound_at),
        "first_response_at": rfc3339(case.first_response_at),
        "frt_s": case.frt_s,
        "handling_s": case.handling_s,
        "fcr": case.fcr,
        "is_repeat": case.is_repeat,
        "handoff_at": rfc3339(case.handoff_at),
        "attribution": case.attribution,
    }


class _Book:
    """A batch's cases in memory: the rules of the module docstring, event by event."""

    def __init__(self, loaded: CaseSet, window: timedelta, has_touch: set[str]) -> None:
        self.window = window
        self.counts = dict(loaded.counts)
        self.open: dict[Pair, CaseRecord] = {}
        self.latest: dict[Pair, CaseRecord] = {}
        self.by_conversation: dict[tuple[str, str], CaseRecord] = {}
        self.before = {key: _snapshot(case) for key, case in loaded.cases.items()}
        newest_first = sorted(
            loaded.cases.values(), key=lambda c: (-c.opened_at.timestamp(), c.case_key)
        )
        for case in newest_first:
            pair = (case.contact_id, case.business_number)
            self.latest.setdefault(pair, case)
            if case.status == "open":
                self.open.setdefault(pair, case)
            if case.conversation_id:
                self.by_conversation.setdefault((case.contact_id, case.conversation_id), case)
        self.new: list[str] = []
        self.touched: dict[str, CaseRecord] = {}
        self.trigger: dict[str, CanonicalEvent] = {}
        self.has_touch = has_touch
        self.touches: dict[str, tuple[FirstTouch, str]] = {}  # contact → (touch, case key)
        self.messages: dict[str, str | None] = {}  # a status's message → its case (batch)
        self.figures = Figures()

    def touch(self, case: CaseRecord, event: CanonicalEvent) -> None:
        self.touched[case.case_key] = case
        self.trigger[case.case_key] = event

    # --- transitions --------------------------------------------------------------------
    def lapse(self, pair: Pair, at: datetime, event: CanonicalEvent) -> None:
        """Close the pair's open case if its window ended by ``at``."""
        case = self.open.get(pair)
        if case is None:
            return
        if case.lapses_at is None:  # a case opened before the window was tracked (0007)
            case.lapses_at = _later(case.last_inbound_at or case.opened_at, self.window)
        if case.lapses_at > at:
            return
        case.status, case.close_reason = "closed", "lapsed"
        case.closed_at, case.fcr = case.lapses_at, False
        del self.open[pair]
        self.figures.closed_first_contact.append(False)
        if case.frt_s is not None:
            self.figures.frt_s.append(case.frt_s)
        self.touch(case, event)

    def open_case(self, pair: Pair, event: CanonicalEvent, at: datetime, by: str) -> CaseRecord:
        contact_id, number = pair
        count = self.counts.get(pair, 0)
        self.counts[pair] = count + 1
        previous = self.latest.get(pair)
        is_repeat = (
            previous is not None
            and previous.closed_at is not None
            and at - previous.closed_at < self.window
        )
        if is_repeat and previous is not None and previous.fcr:
            previous.fcr = False  # the customer came back: not resolved on first contact
            self.touch(previous, event)
        case = CaseRecord(
            case_key=case_key_for(contact_id, number, count),
            contact_id=contact_id,
            business_number=number,
            status="open",
            opened_at=at,
            opened_by=by,
            lapses_at=_later(at, self.window),
            is_repeat=is_repeat,
            contact_ref=event.subject,
        )
        self.open[pair] = self.latest[pair] = case
        self.new.append(case.case_key)
        self.figures.opened += 1
        self.touch(case, event)
        return case

    def close(self, case: CaseRecord, reason: CloseReason, at: datetime) -> bool:
        """Resolve ``case`` at ``at``; False when that changes nothing (already resolved)."""
        if case.status == "open":
            self.open.pop((case.contact_id, case.business_number), None)
            self.figures.closed_first_contact.append(not case.is_repeat)
            if case.frt_s is not None:
                self.figures.frt_s.append(case.frt_s)
        elif case.close_reason == "lapsed":
            pass  # resolved after its window lapsed: a resolved case after all
        elif reason == "converted" and case.close_reason == "resolved":
            case.close_reason = reason
            return True
        else:
            return False
        case.status, case.close_reason, case.closed_at = "resolved", reason, at
        case.handling_s = _seconds(at, case.opened_at)
        case.fcr = not case.is_repeat
        self.figures.handling_s.append(case.handling_s)
        return True

    def respond(self, case: CaseRecord, at: datetime, event: CanonicalEvent) -> None:
        """A message the business sent at ``at`` in ``case``: the first response?"""
        if case.first_response_at is not None or case.first_inbound_at is None:
            return
        if at < case.first_inbound_at or (case.handoff_at is not None and at < case.handoff_at):
            return
        case.first_response_at = at
        case.frt_s = _seconds(at, case.first_inbound_at)
        self.touch(case, event)

    # --- events -------------------------------------------------------------------------
    def customer_message(self, pair: Pair, event: CanonicalEvent, at: datetime) -> str | None:
        self.lapse(pair, at, event)
        case = self.open.get(pair)
        if case is not None and at < case.opened_at - self.window:
            return None  # from a conversation long before the open one (a replay): no case
        if case is None:
            case = self.open_case(pair, event, at, "message")
        case.first_inbound_at = case.first_inbound_at or at
        if case.last_inbound_at is None or at > case.last_inbound_at:
            case.last_inbound_at = at
            case.lapses_at = _later(at, self.window)
        case.contact_ref = event.subject or case.contact_ref
        attribution = facts.attribution_of(event)
        if attribution is not None:
            if case.attribution is None:
                case.attribution = attribution
            self.first_touch(pair[0], attribution, at, case.case_key)
        self.touch(case, event)
        return case.case_key

    def first_touch(
        self, contact_id: str, attribution: dict[str, Any], at: datetime, key: str
    ) -> None:
        if contact_id in self.has_touch or contact_id in self.touches:
            return
        touch = {**attribution, "at": rfc3339(at)}
        self.touches[contact_id] = (FirstTouch(contact_id, touch, at), key)

    def business_message(
        self, pair: Pair, event: CanonicalEvent, at: datetime, message_id: str | None
    ) -> str | None:
        """An echo, or the first status of a message: lands on the open case, if any."""
        self.lapse(pair, at, event)
        case = self.open.get(pair)
        if message_id is not None:
            self.messages[message_id] = case.case_key if case else None
        if case is None:
            return None
        self.respond(case, at, event)
        return case.case_key

    def status(
        self, pair: Pair, event: CanonicalEvent, fact: facts.StatusFact, seen: set[str]
    ) -> str | None:
        if fact.message_id in self.messages:
            return self.messages[fact.message_id]  # a later status of it in this batch
        if fact.message_id in seen:
            self.lapse(pair, fact.at, event)
            return None  # its note is on the case it was first seen in
        if fact.status not in _ANSWERS:
            self.lapse(pair, fact.at, event)
            case = self.open.get(pair)
            self.messages[fact.message_id] = case.case_key if case else None
            return self.messages[fact.message_id]
        return self.business_message(pair, event, fact.at, fact.message_id)

    def inbox(self, pair: Pair, event: CanonicalEvent, fact: facts.InboxFact, at: datetime) -> str:
        self.lapse(pair, at, event)
        case = self.case_for_inbox(pair, event, fact, at)
        if fact.kind == "handoff" and case.handoff_at is None:
            case.handoff_at = at
            if case.first_response_at is not None and case.first_response_at < at:
                case.first_response_at = case.frt_s = None  # a bot's answer: wait for a person
        elif fact.kind in ("resolved", "converted"):
            self.close(case, "converted" if fact.kind == "converted" else "resolved", at)
            if fact.kind == "converted":
                case.outcome = fact.outcome or "converted"
                case.outcome_value, case.outcome_currency = fact.value, fact.currency
            elif fact.outcome is not None:
                case.outcome = fact.outcome
        elif fact.kind == "csat" and fact.csat is not None:
            case.csat = fact.csat
            self.figures.csat.append(fact.csat)
        self.touch(case, event)
        return case.case_key

    def case_for_inbox(
        self, pair: Pair, event: CanonicalEvent, fact: facts.InboxFact, at: datetime
    ) -> CaseRecord:
        conversation = fact.conversation_id
        if conversation is not None:
            bound = self.by_conversation.get((pair[0], conversation))
            if bound is not None:
                return bound
        case = self.open.get(pair)
        latest = self.latest.get(pair)
        if case is None and latest is not None:
            recent = latest.closed_at is None or at - latest.closed_at <= self.window
            if conversation is None or (latest.conversation_id is None and recent):
                case = latest  # a late event: it lands on the case it was about
        if case is None:
            case = self.open_case(pair, event, at, "inbox")
        if conversation is not None and case.conversation_id is None:
            case.conversation_id = conversation
            self.by_conversation[(pair[0], conversation)] = case
        return case

    def window_check(self, check: facts.WindowCheck, at: datetime, event: CanonicalEvent) -> None:
        pair = (check.contact_id, check.business_number)
        case = self.open.get(pair)
        if case is not None and case.case_key == check.case_key:
            self.lapse(pair, at, event)

    # --- the batch's result -------------------------------------------------------------
    def derived(self) -> list[Derived]:
        """One ``conversation.case.updated`` per case whose visible state changed (or
        whose contact got its first touch)."""
        touch_of = {key: touch for touch, key in self.touches.values()}
        out: list[Derived] = []
        for key, case in self.touched.items():
            now = _snapshot(case)
            touch = touch_of.get(key)
            if now == self.before.get(key) and touch is None:
                continue
            trigger = self.trigger[key]
            data: dict[str, Any] = {
                "case_key": key,
                "business_number": case.business_number,
                **now,
            }
            if touch is not None:
                data["first_touch"] = touch.touch
            event = CanonicalEvent(
                id=f"{trigger.id}#case:{key}",
                type=facts.CASE_UPDATED,
                source=CASE_SOURCE,
                time=trigger.time,
                data=data,
                subject=trigger.subject,
                recvtime=trigger.recvtime,
                wabaid=trigger.wabaid,
            )
            out.append(Derived(event=event, trigger_id=trigger.id, case=case))
        return out


async def track(
    tx: StoreTx,
    events: Sequence[CanonicalEvent],
    contact_ids: Mapping[str, str],
    seen: set[str],
    options: ConversationOptions,
    statuses: Mapping[str, facts.StatusFact] | None = None,
) -> Tracked:
    """Apply the conversation rules to ``events`` (in order; ``contact_ids``: event id →
    resolved contact id; ``seen``: message ids with a status recorded before this batch;
    ``statuses``: each status event's fact when the caller has them, else read here)
    and save what changed in ``tx``. Raises what the store raises."""
    checks = {e.id: c for e in events if (c := facts.window_check_of(e)) is not None}
    wanted = [e for e in events if e.id in contact_ids or e.id in checks]
    if not wanted:
        return Tracked()
    contacts = {contact_ids[e.id] for e in wanted if e.id in contact_ids}
    contacts |= {c.contact_id for c in checks.values()}
    conversations = [
        f.conversation_id
        for e in wanted
        if (f := facts.inbox_fact_of(e)) is not None and f.conversation_id is not None
    ]
    attributed = [contact_ids[e.id] for e in wanted if facts.attribution_of(e) is not None]
    loaded = await tx.load_cases(sorted(contacts), conversations)
    has_touch = await tx.first_touches(attributed) if attributed else set()
    book = _Book(loaded, options.window, has_touch)
    out = Tracked()
    for event in wanted:
        key = _apply(book, event, contact_ids.get(event.id), checks.get(event.id), seen, statuses)
        if key is not None:
            out.case_keys[event.id] = key
    if book.touched:
        await tx.save_cases(list(book.touched.values()), book.new)
    if book.touches:
        await tx.set_first_touches([touch for touch, _ in book.touches.values()])
    out.derived = book.derived()
    out.figures = book.figures
    return out


def _apply(
    book: _Book,
    event: CanonicalEvent,
    contact_id: str | None,
    check: facts.WindowCheck | None,
    seen: set[str],
    statuses: Mapping[str, facts.StatusFact] | None,
) -> str | None:
    """One event through the book; its case key, if it has one."""
    at = facts.event_time(event)
    if check is not None:
        book.window_check(check, at, event)
        return None
    if contact_id is None:
        return None
    pair = (contact_id, facts.business_number_of(event))
    if event.type == facts.CUSTOMER_MESSAGE:
        return book.customer_message(pair, event, at)
    if event.type == facts.ECHO:
        message_id = event.data.get("message_id")
        return book.business_message(
            pair, event, at, message_id if isinstance(message_id, str) else None
        )
    status = statuses.get(event.id) if statuses is not None else facts.status_of(event)
    if status is not None:
        return book.status(pair, event, status, seen)
    inbox = facts.inbox_fact_of(event)
    if inbox is not None:
        return book.inbox(pair, event, inbox, at)
    return None


def observe(figures: Figures) -> None:
    """Export a committed batch's figures (wa_bridge_conversation_*)."""
    if figures.opened:
        CONVERSATIONS_OPENED.inc(figures.opened)
    for first_contact in figures.closed_first_contact:
        CONVERSATIONS_CLOSED.labels(first_contact="yes" if first_contact else "no").inc()
    for frt in figures.frt_s:
        CONVERSATION_FIRST_RESPONSE_SECONDS.observe(frt)
    for handling in figures.handling_s:
        CONVERSATION_HANDLING_SECONDS.observe(handling)
    for score in figures.csat:
        CONVERSATION_CSAT.observe(score)
