"""Conversations as the business sees them: what the worker tracks per case (window,
first response, handling time, first-contact resolution, outcome, CSAT), the first touch
on each contact, the account notices history, and the SQL CRM's new case columns
(wa_bridge.store.tables at 0007).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_T = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ID_T = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def _case_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("conversation_id", sa.String(length=200), nullable=True),
        sa.Column("contact_ref", sa.String(length=200), nullable=True),
        sa.Column("opened_by", sa.String(length=16), nullable=True),
        sa.Column("attribution", JSON_T, nullable=True),
        sa.Column("first_inbound_at", TIME, nullable=True),
        sa.Column("last_inbound_at", TIME, nullable=True),
        sa.Column("lapses_at", TIME, nullable=True),
        sa.Column("handoff_at", TIME, nullable=True),
        sa.Column("first_response_at", TIME, nullable=True),
        sa.Column("frt_s", sa.Integer(), nullable=True),
        sa.Column("close_reason", sa.String(length=16), nullable=True),
        sa.Column("handling_s", sa.Integer(), nullable=True),
        sa.Column("fcr", sa.Boolean(), nullable=True),
        sa.Column("is_repeat", sa.Boolean(), nullable=True),
        sa.Column("outcome", sa.String(length=100), nullable=True),
        sa.Column("outcome_value", sa.Numeric(18, 4), nullable=True),
        sa.Column("outcome_currency", sa.String(length=8), nullable=True),
        sa.Column("csat", sa.Integer(), nullable=True),
    ]


def _crm_case_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("queue", sa.String(length=200), nullable=True),
        sa.Column("conversation_id", sa.String(length=200), nullable=True),
        sa.Column("closed_at", TIME, nullable=True),
        sa.Column("close_reason", sa.String(length=16), nullable=True),
        sa.Column("outcome", sa.String(length=100), nullable=True),
        sa.Column("outcome_value", sa.Numeric(18, 4), nullable=True),
        sa.Column("outcome_currency", sa.String(length=8), nullable=True),
        sa.Column("csat", sa.Integer(), nullable=True),
        sa.Column("csat_at", TIME, nullable=True),
        sa.Column("first_response_at", TIME, nullable=True),
        sa.Column("frt_s", sa.Integer(), nullable=True),
        sa.Column("handling_s", sa.Integer(), nullable=True),
        sa.Column("fcr", sa.Boolean(), nullable=True),
        sa.Column("handoff_at", TIME, nullable=True),
        sa.Column("intents", JSON_T, nullable=True),
        sa.Column("captured", sa.Text(), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        for column in _case_columns():
            batch.add_column(column)
        batch.create_index(op.f("ix_cases_status_lapses_at"), ["status", "lapses_at"])
    # cases open before this revision: their window runs from their opening (the sweep
    # closes them a day on; the next message of a live one moves it on)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE cases SET lapses_at = opened_at + interval '1 day' WHERE status = 'open'"
        )
    else:
        op.execute(
            "UPDATE cases SET lapses_at = datetime(opened_at, '+1 day') WHERE status = 'open'"
        )
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("first_touch", JSON_T, nullable=True))
        batch.add_column(sa.Column("first_touch_at", TIME, nullable=True))
    with op.batch_alter_table("crm_cases") as batch:
        for column in _crm_case_columns():
            batch.add_column(column)
    op.create_table(
        "account_events",
        sa.Column("id", ID_T, nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("label", sa.String(length=300), nullable=True),
        sa.Column("change", sa.String(length=100), nullable=True),
        sa.Column("previous", sa.String(length=100), nullable=True),
        sa.Column("current", sa.String(length=100), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_account_events_event_id")),
    )
    op.create_index(op.f("ix_account_events_at"), "account_events", ["at"])
    op.create_index(op.f("ix_account_events_scope_subject"), "account_events", ["scope", "subject"])


def downgrade() -> None:
    op.drop_index(op.f("ix_account_events_scope_subject"), table_name="account_events")
    op.drop_index(op.f("ix_account_events_at"), table_name="account_events")
    op.drop_table("account_events")
    with op.batch_alter_table("crm_cases") as batch:
        for column in reversed(_crm_case_columns()):
            batch.drop_column(column.name)
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("first_touch_at")
        batch.drop_column("first_touch")
    with op.batch_alter_table("cases") as batch:
        batch.drop_index(op.f("ix_cases_status_lapses_at"))
        for column in reversed(_case_columns()):
            batch.drop_column(column.name)
