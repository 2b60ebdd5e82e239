"""A run's warning: what went wrong without stopping it (a checkpoint its worker could not write,
naming the path and the OS error), shown until a later write succeeds; null when all is well.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("experiments", sa.Column("warning", sa.Text(), nullable=True))


def downgrade() -> None:
    # SQLite drops a column by rebuilding the table, which must keep its AUTOINCREMENT (0003)
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("experiments", table_kwargs={"sqlite_autoincrement": True} if sqlite else {}) as batch_op:
        batch_op.drop_column("warning")
