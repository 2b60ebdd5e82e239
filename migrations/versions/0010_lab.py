"""The optimizer lab: races of solvers on 2-D test functions (per project) and loss landscapes of
trained runs (per experiment), each computed once by a lab worker and stored.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS = "status IN ('queued', 'running', 'done', 'failed')"


def _job_columns() -> list[sa.Column]:
    return [
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "races",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        *_job_columns(),
        sa.CheckConstraint(STATUS, name=op.f("ck_races_race_status")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_races_created_by_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_races_project_id_projects"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_races")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("races", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_races_project_id"), ["project_id"], unique=False)
    op.create_table(
        "landscapes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        *_job_columns(),
        sa.CheckConstraint(STATUS, name=op.f("ck_landscapes_landscape_status")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_landscapes_created_by_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"],
                                name=op.f("fk_landscapes_experiment_id_experiments"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_landscapes")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("landscapes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_landscapes_experiment_id"), ["experiment_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("landscapes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_landscapes_experiment_id"))
    op.drop_table("landscapes")
    with op.batch_alter_table("races", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_races_project_id"))
    op.drop_table("races")
