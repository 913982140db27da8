"""crm_quota: one row per CRM instance, the quota every worker process shares.

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-08 10:00:00.000000

The gate of ``wa_bridge.connectors.gate`` reads and merges this row around CRM requests:
``blocked_until`` (Retry-After, a spent rate window), the daily budget (``daily_remaining``
of ``daily_limit``) and, when it is spent, ``resets_at``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crm_quota",
        sa.Column("crm", sa.String(length=200), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("daily_remaining", sa.BigInteger(), nullable=True),
        sa.Column("daily_limit", sa.BigInteger(), nullable=True),
        sa.Column("resets_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("crm", name=op.f("pk_crm_quota")),
    )


def downgrade() -> None:
    op.drop_table("crm_quota")
