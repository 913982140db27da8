"""Columns as wide as what the edges and the shipped mapping let through.

A value the receiver accepted but a column could not hold failed the worker's whole batch
on PostgreSQL ("value too long"). Widened: the business a BSUID is scoped by and the
business number of a case (Meta's phone_number_id / WABA id, up to 128 characters at the
edges, or ``inbox:<phone_number_id>``), the subject of an account signal (a phone number
id or a template id, up to 128), and the SQL CRM's contact name, click id and ad
URL (to the mapping's max_length: 256, 512 and 2048).

SQLite does not enforce VARCHAR lengths: there is nothing to change on it.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, length before, length after); on PostgreSQL a longer VARCHAR is a
# change of the catalog only: no table rewrite, no index rebuilt
_WIDENED = (
    ("identities", "business", 64, 200),
    ("cases", "business_number", 64, 200),
    ("account_signals", "subject", 100, 200),
    ("crm_contacts", "name", 200, 256),
    ("crm_cases", "ctwa_clid", 200, 512),
    ("crm_cases", "source_url", 2000, 2048),
)


def _alter(*, widen: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column, before, after in _WIDENED:
        old, new = (before, after) if widen else (after, before)
        op.alter_column(
            table,
            column,
            type_=sa.String(length=new),
            existing_type=sa.String(length=old),
            existing_nullable=(table, column) not in _REQUIRED,
        )


_REQUIRED = {
    ("identities", "business"),
    ("cases", "business_number"),
    ("account_signals", "subject"),
}


def upgrade() -> None:
    _alter(widen=True)


def downgrade() -> None:
    # (fails when a row holds a longer value: cut it first, or stay at 0009)
    _alter(widen=False)
