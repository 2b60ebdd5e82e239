"""How many times a run's training process died without reporting an outcome (killed by the
operating system, a signal, a crash); at ``DESCENT_MAX_ATTEMPTS`` the run fails with the reason
instead of being tried again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("experiments", sa.Column("crashes", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    # SQLite drops a column by rebuilding the table, which must keep its AUTOINCREMENT (0003)
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("experiments", table_kwargs={"sqlite_autoincrement": True} if sqlite else {}) as batch_op:
        batch_op.drop_column("crashes")
