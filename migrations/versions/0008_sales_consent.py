"""Sales and consent: the SQL CRM's deals (crm_deals) and the consent ledger's evidence
columns (where it was captured, the text shown, its source, who recorded it).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_T = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = sa.DateTime(timezone=True)


def _consent_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("captured_via", sa.String(length=32), nullable=True),
        sa.Column("text_shown", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("recorded_by", sa.String(length=200), nullable=True),
        sa.Column("recorded_at", TIME, nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        for column in _consent_columns():
            batch.add_column(column)
    op.create_table(
        "crm_deals",
        sa.Column("deal_key", sa.String(length=64), nullable=False),
        sa.Column("contact_key", sa.String(length=64), nullable=True),
        sa.Column("case_key", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("stage", sa.String(length=16), nullable=True),
        sa.Column("amount", sa.Numeric(18, 4), nullable=True),
        sa.Column("currency", sa.String(length=8), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=True),
        sa.Column("closed_at", TIME, nullable=True),
        sa.Column("occurred_at", TIME, nullable=True),
        sa.Column("attributes", JSON_T, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("deal_key", name=op.f("pk_crm_deals")),
    )
    op.create_index(op.f("ix_crm_deals_contact_key"), "crm_deals", ["contact_key"])


def downgrade() -> None:
    op.drop_index(op.f("ix_crm_deals_contact_key"), table_name="crm_deals")
    op.drop_table("crm_deals")
    with op.batch_alter_table("consents") as batch:
        for column in reversed(_consent_columns()):
            batch.drop_column(column.name)
