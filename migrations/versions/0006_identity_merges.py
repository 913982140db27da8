"""identity_merges: contacts merged by ``wa-bridge identity merge``, with what unmerge needs.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_T = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ID_T = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "identity_merges",
        sa.Column("id", ID_T, nullable=False),
        sa.Column("keep_id", sa.String(length=64), nullable=False),
        sa.Column("other_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("crm", sa.String(length=255), nullable=False),
        sa.Column("crm_result", sa.Text(), nullable=False),
        sa.Column("crm_reversible", sa.Boolean(), nullable=False),
        sa.Column("undo", JSON_T, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("merged_at", TIME, nullable=False),
        sa.Column("unmerged_by", sa.String(length=200), nullable=True),
        sa.Column("unmerged_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_merges")),
    )
    for column in ("keep_id", "other_id"):
        op.create_index(op.f(f"ix_identity_merges_{column}"), "identity_merges", [column])


def downgrade() -> None:
    for column in ("keep_id", "other_id"):
        op.drop_index(op.f(f"ix_identity_merges_{column}"), table_name="identity_merges")
    op.drop_table("identity_merges")
