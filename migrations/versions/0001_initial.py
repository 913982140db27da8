"""Initial state and SQL CRM tables (exactly wa_bridge.store.tables at 0.1.0).

Revision ID: 0001
Revises:
Create Date: 2026-11-24 23:43:18.404942
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# jsonb on PostgreSQL; ids are BIGINT there and INTEGER (rowid alias) on SQLite.
JSON_T = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ID_T = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", ID_T, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_table(
        "cases",
        sa.Column("case_key", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.String(length=64), nullable=False),
        sa.Column("business_number", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("case_key", name=op.f("pk_cases")),
    )
    op.create_index(op.f("ix_cases_contact_id"), "cases", ["contact_id"], unique=False)
    op.create_index(
        "uq_cases_open",
        "cases",
        ["contact_id", "business_number"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
        sqlite_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "consents",
        sa.Column("id", ID_T, nullable=False),
        sa.Column("contact_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
        sa.UniqueConstraint("event_id", name=op.f("uq_consents_event_id")),
    )
    op.create_index(op.f("ix_consents_contact_id"), "consents", ["contact_id"], unique=False)
    op.create_table(
        "contacts",
        sa.Column("contact_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_contacts")),
    )
    op.create_table(
        "crm_cases",
        sa.Column("case_key", sa.String(length=64), nullable=False),
        sa.Column("contact_key", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("subject", sa.String(length=500), nullable=True),
        sa.Column("agent", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("tags", JSON_T, nullable=True),
        sa.Column("ctwa_clid", sa.String(length=200), nullable=True),
        sa.Column("source_url", sa.String(length=2000), nullable=True),
        sa.Column("ad_id", sa.String(length=100), nullable=True),
        sa.Column("utm_source", sa.String(length=200), nullable=True),
        sa.Column("utm_medium", sa.String(length=200), nullable=True),
        sa.Column("utm_campaign", sa.String(length=200), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attributes", JSON_T, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("case_key", name=op.f("pk_crm_cases")),
    )
    op.create_index(op.f("ix_crm_cases_contact_key"), "crm_cases", ["contact_key"], unique=False)
    op.create_table(
        "crm_consents",
        sa.Column("consent_key", sa.String(length=200), nullable=False),
        sa.Column("contact_key", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attributes", JSON_T, nullable=True),
        sa.PrimaryKeyConstraint("consent_key", name=op.f("pk_crm_consents")),
    )
    op.create_table(
        "crm_contacts",
        sa.Column("contact_key", sa.String(length=64), nullable=False),
        sa.Column("phone_e164", sa.String(length=32), nullable=True),
        sa.Column("wa_id", sa.String(length=32), nullable=True),
        sa.Column("bsuid", sa.String(length=200), nullable=True),
        sa.Column("parent_bsuid", sa.String(length=200), nullable=True),
        sa.Column("username", sa.String(length=100), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("country", sa.String(length=8), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("attributes", JSON_T, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("contact_key", name=op.f("pk_crm_contacts")),
    )
    op.create_table(
        "crm_notes",
        sa.Column("note_key", sa.String(length=200), nullable=False),
        sa.Column("case_key", sa.String(length=64), nullable=True),
        sa.Column("contact_key", sa.String(length=64), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=True),
        sa.Column("message_type", sa.String(length=32), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("media_id", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("status_error", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attributes", JSON_T, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("note_key", name=op.f("pk_crm_notes")),
    )
    op.create_index(
        op.f("ix_crm_notes_contact_key_occurred_at"),
        "crm_notes",
        ["contact_key", "occurred_at"],
        unique=False,
    )
    op.create_table(
        "crm_outcomes",
        sa.Column("outcome_key", sa.String(length=200), nullable=False),
        sa.Column("case_key", sa.String(length=64), nullable=True),
        sa.Column("contact_key", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=100), nullable=True),
        sa.Column("value", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("csat", sa.Integer(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attributes", JSON_T, nullable=True),
        sa.PrimaryKeyConstraint("outcome_key", name=op.f("pk_crm_outcomes")),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", ID_T, nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("contact_key", sa.String(length=200), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("error_class", sa.String(length=100), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("crm_error", sa.Text(), nullable=True),
        sa.Column("errors", JSON_T, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("topic", sa.String(length=255), nullable=True),
        sa.Column("partition", sa.Integer(), nullable=True),
        sa.Column("offset", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint("event_id", name=op.f("uq_dead_letters_event_id")),
    )
    op.create_index(
        op.f("ix_dead_letters_status_last_failed_at"),
        "dead_letters",
        ["status", "last_failed_at"],
        unique=False,
    )
    op.create_table(
        "identities",
        sa.Column("business", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("contact_id", sa.String(length=64), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint(
            "business", "kind", "value", "contact_id", name=op.f("pk_identities")
        ),
    )
    op.create_index(op.f("ix_identities_contact_id"), "identities", ["contact_id"], unique=False)
    op.create_index(op.f("ix_identities_value"), "identities", ["value"], unique=False)
    op.create_index(
        "uq_identities_current",
        "identities",
        ["business", "kind", "value"],
        unique=True,
        postgresql_where=sa.text("is_current"),
        sqlite_where=sa.text("is_current"),
    )
    op.create_table(
        "identity_events",
        sa.Column("id", ID_T, nullable=False),
        sa.Column("contact_id", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=32), nullable=False),
        sa.Column("kinds", sa.String(length=100), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_events")),
    )
    op.create_index(
        op.f("ix_identity_events_contact_id"), "identity_events", ["contact_id"], unique=False
    )
    op.create_table(
        "message_statuses",
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_statuses")),
    )
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_processed_events")),
    )
    op.create_index(
        op.f("ix_processed_events_first_seen_at"),
        "processed_events",
        ["first_seen_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_processed_events_first_seen_at"), table_name="processed_events")
    op.drop_table("processed_events")
    op.drop_table("message_statuses")
    op.drop_index(op.f("ix_identity_events_contact_id"), table_name="identity_events")
    op.drop_table("identity_events")
    op.drop_index(
        "uq_identities_current",
        table_name="identities",
        postgresql_where=sa.text("is_current"),
        sqlite_where=sa.text("is_current"),
    )
    op.drop_index(op.f("ix_identities_value"), table_name="identities")
    op.drop_index(op.f("ix_identities_contact_id"), table_name="identities")
    op.drop_table("identities")
    op.drop_index(op.f("ix_dead_letters_status_last_failed_at"), table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_table("crm_outcomes")
    op.drop_index(op.f("ix_crm_notes_contact_key_occurred_at"), table_name="crm_notes")
    op.drop_table("crm_notes")
    op.drop_table("crm_contacts")
    op.drop_table("crm_consents")
    op.drop_index(op.f("ix_crm_cases_contact_key"), table_name="crm_cases")
    op.drop_table("crm_cases")
    op.drop_table("contacts")
    op.drop_index(op.f("ix_consents_contact_id"), table_name="consents")
    op.drop_table("consents")
    op.drop_index(
        "uq_cases_open",
        table_name="cases",
        postgresql_where=sa.text("status = 'open'"),
        sqlite_where=sa.text("status = 'open'"),
    )
    op.drop_index(op.f("ix_cases_contact_id"), table_name="cases")
    op.drop_table("cases")
    op.drop_table("audit_log")
