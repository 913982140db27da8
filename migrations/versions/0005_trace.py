"""Operations: event traces, account signals, alert incidents, worker heartbeats, bulk
replay runs, and the wamid of each dead letter (wa_bridge.store.tables at 0005).

Revision ID: 0005
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_T = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ID_T = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "event_traces",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=True),
        sa.Column("contact_id", sa.String(length=64), nullable=True),
        sa.Column("contact_hash", sa.String(length=32), nullable=True),
        sa.Column("topic", sa.String(length=255), nullable=True),
        sa.Column("partition", sa.Integer(), nullable=True),
        sa.Column("offset", sa.BigInteger(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("event_time", TIME, nullable=True),
        sa.Column("received_at", TIME, nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("outcome_at", TIME, nullable=False),
        sa.Column("crm_ids", JSON_T, nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_event_traces")),
    )
    for column in ("message_id", "contact_id", "contact_hash", "outcome_at"):
        op.create_index(op.f(f"ix_event_traces_{column}"), "event_traces", [column])
    op.create_table(
        "account_signals",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("quality", sa.String(length=16), nullable=True),
        sa.Column("messaging_limit", sa.BigInteger(), nullable=True),
        sa.Column("event", sa.String(length=32), nullable=True),
        sa.Column("at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("scope", "subject", name=op.f("pk_account_signals")),
    )
    op.create_table(
        "alert_incidents",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("labels", JSON_T, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("notified", sa.String(length=16), nullable=False),
        sa.Column("opened_at", TIME, nullable=False),
        sa.Column("seen_at", TIME, nullable=False),
        sa.Column("resolved_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_alert_incidents")),
    )
    op.create_index(
        op.f("ix_alert_incidents_state_opened_at"), "alert_incidents", ["state", "opened_at"]
    )
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("seen_at", TIME, nullable=False),
        sa.Column("figures", JSON_T, nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_worker_heartbeats")),
    )
    op.create_table(
        "replay_runs",
        sa.Column("id", ID_T, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("selection", JSON_T, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("replayed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replay_runs")),
    )
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(sa.Column("message_id", sa.String(length=200), nullable=True))
        batch.create_index(op.f("ix_dead_letters_message_id"), ["message_id"])


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_index(op.f("ix_dead_letters_message_id"))
        batch.drop_column("message_id")
    op.drop_table("replay_runs")
    op.drop_table("worker_heartbeats")
    op.drop_index(op.f("ix_alert_incidents_state_opened_at"), table_name="alert_incidents")
    op.drop_table("alert_incidents")
    op.drop_table("account_signals")
    for column in ("message_id", "contact_id", "contact_hash", "outcome_at"):
        op.drop_index(op.f(f"ix_event_traces_{column}"), table_name="event_traces")
    op.drop_table("event_traces")
