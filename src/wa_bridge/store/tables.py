"""The state schema as SQLAlchemy Core tables; the Alembic migrations create exactly these.

The same tables serve PostgreSQL (asyncpg) and SQLite (aiosqlite). Times are stored in UTC
(``UtcDateTime``), JSON is ``jsonb`` on PostgreSQL. ``crm_contacts``, ``crm_cases``,
``crm_notes``, ``crm_outcomes``, ``crm_consents`` and ``crm_deals`` are the built-in SQL CRM
(``wa_bridge.connectors.sql``): columns for the shared field vocabulary, anything else in
``attributes``. ``crm_quota`` is worker state: each CRM's shared quota.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import SchemaItem

__all__ = [
    "JsonType",
    "UtcDateTime",
    "account_events",
    "account_signals",
    "alert_incidents",
    "audit_log",
    "cases",
    "consents",
    "contacts",
    "crm_cases",
    "crm_consents",
    "crm_contacts",
    "crm_deals",
    "crm_notes",
    "crm_outcomes",
    "crm_quota",
    "crm_records",
    "dead_letters",
    "event_traces",
    "identities",
    "identity_events",
    "identity_merges",
    "message_statuses",
    "metadata",
    "processed_events",
    "replay_runs",
    "worker_heartbeats",
]

NAMING: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime in, an aware UTC datetime out, on both PostgreSQL and SQLite.

    SQLite keeps no zone, so values are stored as naive UTC there; a naive value given to
    us is taken as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, the text SQLAlchemy's SQLite DATETIME stores, in one step: this
        and that type's own processor were ~8 % of the worker's CPU on SQLite."""
        if dialect.name == "sqlite":
            return _sqlite_text
        return super().bind_processor(dialect)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_text(value: datetime | None) -> str | None:
    """``value`` as naive UTC in SQLite DATETIME's storage format (``YYYY-MM-DD
    HH:MM:SS.ffffff``, always six digits); a naive value is taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is not None and value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return _sqlite_utc_text(value)


# A batch binds the same few moments over and over (its ``now``, each event's time on
# several rows: ~15 binds and ~1.4 distinct moments an event in ``bench/worker.py --url
# sqlite``), so they are cached: a hit costs 0.12 µs against 1.1 µs to format. Only UTC
# or naive moments come here: two moments in another zone with a fold (a clock set back)
# compare and hash equal when only ``fold`` tells them apart, yet are an hour apart.
@lru_cache(maxsize=8192)
def _sqlite_utc_text(value: datetime) -> str:
    return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00" of an aware one


JsonType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
KEY = 64  # ids we mint or Meta's ids (wamid ~ 60 chars)
SHORT = 32
# a business: Meta's phone_number_id or WABA id (the edges take at most 128 characters) or
# a scope built from one (``inbox:<phone_number_id>``); widened from KEY in 0009
BUSINESS = 200


def _serial_id() -> Column[int]:
    """An ``id`` primary key the database numbers (BIGINT; SQLite's INTEGER rowid)."""
    return Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


def _numbered(name: str, *columns: SchemaItem) -> Table:
    """A table whose rows the database numbers: ``id`` (``_serial_id``), then ``columns``."""
    return Table(name, metadata, _serial_id(), *columns)


def _unique_where(name: str, *columns: str, where: str) -> Index:
    """A partial unique index, with the same condition on PostgreSQL and SQLite."""
    return Index(
        name, *columns, unique=True, postgresql_where=text(where), sqlite_where=text(where)
    )


def _kafka_position() -> tuple[Column[Any], ...]:
    """Where an event was consumed: its topic, partition and offset."""
    return (
        Column("topic", String(255)),
        Column("partition", Integer),
        Column("offset", BigInteger),
    )


def _consent_terms(*, required: bool) -> tuple[Column[Any], ...]:
    """What a consent row says: the channel and purpose, opt_in | opt_out, the evidence."""
    return (
        Column("channel", String(SHORT), nullable=not required),
        Column("purpose", String(SHORT), nullable=not required),
        Column("status", String(16), nullable=not required),  # opt_in | opt_out
        Column("evidence", Text),
    )


def _case_outcome() -> tuple[Column[Any], ...]:
    """How a case ended for the business: the outcome, its value and currency, the CSAT."""
    return (
        Column("outcome", String(100)),
        Column("outcome_value", Numeric(18, 4)),
        Column("outcome_currency", String(8)),
        Column("csat", Integer),
    )


def _crm_table(
    name: str,
    key: Column[Any],
    *columns: Column[Any],
    refs: tuple[str, ...] = (),
    occurred: bool = False,
    stamps: tuple[str, ...] = ("created_at", "updated_at"),
    index: tuple[str, ...] = (),
) -> Table:
    """A record of the built-in SQL CRM.

    ``key`` (its own key), the keys it refers to (``refs``), the shared field vocabulary
    (``columns``), then what every record ends with: ``occurred_at`` (when ``occurred``), the
    other fields (``attributes``) and the write times (``stamps``).
    """
    return Table(
        name,
        metadata,
        key,
        *(Column(ref, String(KEY)) for ref in refs),
        *columns,
        *((Column("occurred_at", UtcDateTime),) if occurred else ()),
        Column("attributes", JsonType),
        *(Column(stamp, UtcDateTime, nullable=False) for stamp in stamps),
        *((Index(None, *index),) if index else ()),
    )


# --- worker state -------------------------------------------------------------------

processed_events = Table(
    "processed_events",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("outcome", String(SHORT)),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "first_seen_at"),
)

contacts = Table(
    "contacts",
    metadata,
    Column("contact_id", String(KEY), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
    # the first attributed touch (0007): set once by the worker, never overwritten
    Column("first_touch", JsonType),
    Column("first_touch_at", UtcDateTime),
)

# One row per (identifier, contact) ever linked; at most one current link per identifier.
identities = Table(
    "identities",
    metadata,
    Column("business", String(BUSINESS), nullable=False),  # "" for phones (global)
    Column("kind", String(16), nullable=False),  # phone | bsuid | parent_bsuid
    Column("value", String(200), nullable=False),
    Column("contact_id", String(KEY), nullable=False),
    Column("is_current", Boolean, nullable=False),
    Column("linked_at", UtcDateTime, nullable=False),
    Column("replaced_at", UtcDateTime),
    PrimaryKeyConstraint("business", "kind", "value", "contact_id"),
    Index(None, "contact_id"),
    Index(None, "value"),
    _unique_where("uq_identities_current", "business", "kind", "value", where="is_current"),
)

identity_events = _numbered(
    "identity_events",
    Column("contact_id", String(KEY), nullable=False),
    Column("decision", String(SHORT), nullable=False),
    Column("kinds", String(100), nullable=False),
    Column("detail", String(200)),  # hashed identifiers only, never raw numbers
    Column("at", UtcDateTime, nullable=False),
    Index(None, "contact_id"),
)

# Merges of two contacts (wa-bridge identity merge): ``other_id`` was merged into
# ``keep_id``; ``undo`` (JSON) is what ``identity unmerge`` needs to give the links, cases
# and consent rows back; ``crm_result`` says what the CRM did (its merge may be final).
identity_merges = _numbered(
    "identity_merges",
    Column("keep_id", String(KEY), nullable=False),
    Column("other_id", String(KEY), nullable=False),
    Column("status", String(16), nullable=False),  # merged | unmerged
    Column("crm", String(255), nullable=False),  # the CRM instance merged in
    Column("crm_result", Text, nullable=False),
    Column("crm_reversible", Boolean, nullable=False),
    Column("undo", JsonType, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("merged_at", UtcDateTime, nullable=False),
    Column("unmerged_by", String(200)),
    Column("unmerged_at", UtcDateTime),
    Index(None, "keep_id"),
    Index(None, "other_id"),
)

# One row per conversation (wa_bridge.store.cases, worker.conversations); the columns from
# conversation_id on are 0007's: what the worker tracks to open, close and measure a case.
cases = Table(
    "cases",
    metadata,
    Column("case_key", String(KEY), primary_key=True),
    Column("contact_id", String(KEY), nullable=False),
    Column("business_number", String(BUSINESS), nullable=False),
    Column("status", String(16), nullable=False),  # open | resolved | closed (lapsed)
    Column("opened_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime),
    Column("conversation_id", String(200)),  # the agents' inbox's own id, once it names one
    Column("contact_ref", String(200)),  # the Kafka key of the contact's latest event
    Column("opened_by", String(16)),  # message | inbox
    Column("attribution", JsonType),  # the touch that opened it (last touch)
    Column("first_inbound_at", UtcDateTime),
    Column("last_inbound_at", UtcDateTime),
    Column("lapses_at", UtcDateTime),  # when the customer-service window ends
    Column("handoff_at", UtcDateTime),
    Column("first_response_at", UtcDateTime),
    Column("frt_s", Integer),
    Column("close_reason", String(16)),  # resolved | converted | lapsed
    Column("handling_s", Integer),
    Column("fcr", Boolean),
    Column("is_repeat", Boolean),  # opened within the window after the previous case closed
    *_case_outcome(),
    Index(None, "contact_id"),
    Index(None, "status", "lapses_at"),
    _unique_where("uq_cases_open", "contact_id", "business_number", where="status = 'open'"),
)

message_statuses = Table(
    "message_statuses",
    metadata,
    Column("message_id", String(200), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("error", Text),
)

dead_letters = _numbered(
    "dead_letters",
    Column("event_id", String(200), nullable=False, unique=True),
    Column("event_type", String(100), nullable=False),
    Column("contact_key", String(200)),
    Column("payload", LargeBinary, nullable=False),
    Column("error_class", String(100), nullable=False),
    Column("error_message", Text, nullable=False),
    Column("crm_error", Text),
    Column("errors", JsonType, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("first_failed_at", UtcDateTime, nullable=False),
    Column("last_failed_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # open | replayed | discarded
    Column("note", Text),
    *_kafka_position(),
    Column("message_id", String(200)),  # the wamid it is about (0005), for wa-bridge trace
    Index(None, "status", "last_failed_at"),
    Index(None, "message_id"),
)

audit_log = _numbered(
    "audit_log",
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("role", String(SHORT), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", String(200), nullable=False),
    Column("detail", Text, nullable=False),
)

# --- operations (migration 0005): traces, signals, alerts, heartbeats, replay runs ------

# One row per event the worker applied (or replayed): where it was consumed, both times,
# the outcome and the CRM ids it became. No personal data (hashed contact key only).
event_traces = Table(
    "event_traces",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("event_type", String(100), nullable=False),
    Column("message_id", String(200)),
    Column("contact_id", String(KEY)),
    Column("contact_hash", String(SHORT)),
    *_kafka_position(),
    Column("attempt", Integer),
    Column("event_time", UtcDateTime),
    Column("received_at", UtcDateTime),
    Column("outcome", String(SHORT), nullable=False),
    Column("outcome_at", UtcDateTime, nullable=False),
    Column("crm_ids", JsonType),
    Index(None, "message_id"),
    Index(None, "contact_id"),
    Index(None, "contact_hash"),
    Index(None, "outcome_at"),
)

# The latest quality rating / messaging limit per business number or template.
account_signals = Table(
    "account_signals",
    metadata,
    Column("scope", String(16), nullable=False),  # phone_number | template
    Column("subject", String(BUSINESS), nullable=False),  # 0009; was 100
    Column("label", String(200)),
    Column("quality", String(16)),
    Column("messaging_limit", BigInteger),
    Column("event", String(SHORT)),
    Column("at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("scope", "subject"),
)

# Every account notice Meta sent (0007), oldest first: template status / quality /
# category, phone-number quality and messaging limit, account updates (wa-bridge account
# events). ``account_signals`` keeps only the latest quality per subject, for the gauges.
account_events = _numbered(
    "account_events",
    Column("event_id", String(200), nullable=False, unique=True),
    Column("event_type", String(100), nullable=False),
    Column("scope", String(16), nullable=False),  # template | phone_number | account
    Column("subject", String(200)),  # template id, business number, WABA id
    Column("label", String(300)),  # template name (language), display number
    Column("change", String(100)),  # Meta's word: APPROVED, FLAGGED, UPGRADE, ...
    Column("previous", String(100)),  # the value before, when Meta says
    Column("current", String(100)),  # the value after (quality, category, limit tier)
    Column("detail", Text),  # a reason, when Meta gives one
    Column("at", UtcDateTime, nullable=False),
    Index(None, "at"),
    Index(None, "scope", "subject"),
)

# Built-in alerts: one row per incident key (rule + labels); who notified what.
alert_incidents = Table(
    "alert_incidents",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("rule", String(100), nullable=False),
    Column("labels", JsonType, nullable=False),
    Column("state", String(16), nullable=False),  # firing | resolved
    Column("summary", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("owner", String(200), nullable=False),
    Column(
        "notified", String(16), nullable=False
    ),  # the state last posted: firing | resolved | none
    Column("opened_at", UtcDateTime, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime),
    Index(None, "state", "opened_at"),
)

# One row per worker process: when it was last seen and its own figures (lag, CRM).
worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("worker_id", String(200), primary_key=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
    Column("figures", JsonType, nullable=False),
)

# Bulk replays (wa-bridge dlq replay --all|--filter): resumable from ``cursor``.
replay_runs = _numbered(
    "replay_runs",
    Column("actor", String(200), nullable=False),
    Column("selection", JsonType, nullable=False),
    Column("status", String(16), nullable=False),  # running | done
    Column("cursor", BigInteger, nullable=False),  # the last dead letter id handled
    Column("replayed", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("held", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

consents = _numbered(
    "consents",
    Column("contact_id", String(KEY), nullable=False),
    *_consent_terms(required=True),
    Column("event_id", String(200), nullable=False, unique=True),
    Column("at", UtcDateTime, nullable=False),
    # 0008: where the consent was captured (whatsapp_preferences, whatsapp_keyword,
    # web_form, pos, sms…), the text the customer was shown, who recorded it (the system
    # or form that sent it), and the admin token's actor for POST /consents
    Column("captured_via", String(SHORT)),
    Column("text_shown", Text),
    Column("source", String(200)),
    Column("recorded_by", String(200)),
    Column("recorded_at", UtcDateTime),
    Index(None, "contact_id"),
)

# What we know of an HTTP CRM's records (wa_bridge.store.book): our key → the CRM's id, per
# CRM instance and kind of record; how we came to own it (created | key | phone | email);
# the if_empty fields known to hold a value (JSON list); field → short hash of the last
# value we wrote (JSON object). Loaded by (crm, key IN …) once per batch.
crm_records = Table(
    "crm_records",
    metadata,
    Column("crm", String(255), nullable=False),
    Column("key", String(255), nullable=False),
    Column("kind", String(SHORT), nullable=False),
    Column("crm_id", String(KEY), nullable=False),
    Column("match", String(16), nullable=False),
    Column("filled", JsonType, nullable=False),
    Column("written", JsonType, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("crm", "key", "kind"),
)

# One row per CRM instance (a HubSpot portal, a Salesforce org): the quota every worker
# process shares (wa_bridge.store.crm_quota, the gate of wa_bridge.connectors.gate).
crm_quota = Table(
    "crm_quota",
    metadata,
    Column("crm", String(200), primary_key=True),
    Column("blocked_until", UtcDateTime),  # no request before this (Retry-After, window)
    Column("daily_remaining", BigInteger),
    Column("daily_limit", BigInteger),
    Column("resets_at", UtcDateTime),  # when a spent daily budget is back
    Column("updated_at", UtcDateTime, nullable=False),  # when the daily figures were seen
)

# --- the built-in SQL CRM -------------------------------------------------------------

crm_contacts = _crm_table(
    "crm_contacts",
    Column("contact_key", String(KEY), primary_key=True),
    Column("phone_e164", String(SHORT)),
    Column("wa_id", String(SHORT)),
    Column("bsuid", String(200)),
    Column("parent_bsuid", String(200)),
    Column("username", String(100)),
    Column("name", String(256)),  # the mapping's max_length (0009; was 200)
    Column("country", String(8)),
    Column("email", String(320)),
)

crm_cases = _crm_table(
    "crm_cases",
    Column("case_key", String(KEY), primary_key=True),
    Column("status", String(16)),
    Column("channel", String(SHORT)),
    Column("subject", String(500)),
    Column("agent", String(200)),
    Column("reason", String(500)),
    Column("tags", JsonType),
    # the mapping's max_length (0009; were 200 and 2000)
    Column("ctwa_clid", String(512)),
    Column("source_url", String(2048)),
    Column("ad_id", String(100)),
    Column("utm_source", String(200)),
    Column("utm_medium", String(200)),
    Column("utm_campaign", String(200)),
    Column("opened_at", UtcDateTime),
    # 0007: the conversation as the business sees it
    Column("queue", String(200)),
    Column("conversation_id", String(200)),
    Column("closed_at", UtcDateTime),
    Column("close_reason", String(16)),
    *_case_outcome(),
    Column("csat_at", UtcDateTime),
    Column("first_response_at", UtcDateTime),
    Column("frt_s", Integer),
    Column("handling_s", Integer),
    Column("fcr", Boolean),
    Column("handoff_at", UtcDateTime),
    Column("intents", JsonType),
    Column("captured", Text),
    refs=("contact_key",),
    stamps=("updated_at",),
    index=("contact_key",),
)

crm_notes = _crm_table(
    "crm_notes",
    Column("note_key", String(200), primary_key=True),
    Column("direction", String(16)),
    Column("message_type", String(SHORT)),
    Column("body", Text),
    Column("media_id", String(200)),
    Column("status", String(16)),
    Column("status_error", Text),
    refs=("case_key", "contact_key"),
    occurred=True,
    index=("contact_key", "occurred_at"),
)

crm_outcomes = _crm_table(
    "crm_outcomes",
    Column("outcome_key", String(200), primary_key=True),
    Column("outcome", String(100)),
    Column("value", Numeric(18, 4)),
    Column("reason", String(500)),
    Column("csat", Integer),
    refs=("case_key", "contact_key"),
    occurred=True,
    stamps=(),
)

crm_consents = _crm_table(
    "crm_consents",
    Column("consent_key", String(200), primary_key=True),
    *_consent_terms(required=False),
    refs=("contact_key",),
    occurred=True,
    stamps=(),
)

# A sale of a case (the mapping's upsert_deal): one per case, keyed by its case key.
crm_deals = _crm_table(
    "crm_deals",
    Column("deal_key", String(KEY), primary_key=True),
    Column("name", String(500)),
    Column("stage", String(16)),  # open | won | lost
    Column("amount", Numeric(18, 4)),
    Column("currency", String(8)),
    Column("source", String(SHORT)),  # conversion | order
    Column("closed_at", UtcDateTime),
    refs=("contact_key", "case_key"),
    occurred=True,
    index=("contact_key",),
)
