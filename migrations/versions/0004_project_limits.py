"""Per-project limits: a project's own most queued and running experiments and most stored
upload MiB, set by an admin (``PATCH /projects/{id}/limits``); null, the default, means the
settings' (``DESCENT_MAX_ACTIVE_EXPERIMENTS``, ``DESCENT_MAX_PROJECT_STORAGE_MB``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("max_active_experiments", "max_storage_mb")


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("projects", sa.Column(column, sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch_op:  # SQLite drops a column by rebuilding the table
        for column in reversed(COLUMNS):
            batch_op.drop_column(column)
