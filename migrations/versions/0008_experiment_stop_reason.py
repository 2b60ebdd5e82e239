"""Why a run ended before its last epoch (early stopping: the metric, its best value and epoch),
shown with the run.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("experiments", sa.Column("stop_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    # SQLite drops a column by rebuilding the table, which must keep its AUTOINCREMENT (0003)
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("experiments", table_kwargs={"sqlite_autoincrement": True} if sqlite else {}) as batch_op:
        batch_op.drop_column("stop_reason")
