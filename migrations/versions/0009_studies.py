"""Studies (hyperparameter searches, ``core.studies``) and their trials: an experiment may belong
to a study, with its trial number and the parameters the study set; a trial a pruner stops ends
``pruned``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')"
NEW = "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'pruned')"


def _experiments(sqlite: bool):
    # SQLite alters a table by rebuilding it, which must keep its AUTOINCREMENT (0003)
    return op.batch_alter_table("experiments", table_kwargs={"sqlite_autoincrement": True} if sqlite else {})


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("split_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('running', 'done', 'stopped')", name=op.f("ck_studies_study_status")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_studies_created_by_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_studies_project_id_projects"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["split_id"], ["splits.id"], name=op.f("fk_studies_split_id_splits"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studies")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_studies_project_id"), ["project_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_studies_split_id"), ["split_id"], unique=False)
    with _experiments(sqlite) as batch_op:
        batch_op.add_column(sa.Column("study_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("trial_number", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("trial_params", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_experiments_study_id"), ["study_id"], unique=False)
        batch_op.create_unique_constraint(batch_op.f("uq_experiments_study_id_trial_number"),
                                          ["study_id", "trial_number"])
        batch_op.create_foreign_key(batch_op.f("fk_experiments_study_id_studies"), "studies", ["study_id"], ["id"],
                                    ondelete="RESTRICT")
        batch_op.drop_constraint(batch_op.f("ck_experiments_status"), type_="check")
        batch_op.create_check_constraint("status", NEW)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # the older schema has no pruned runs: they become cancelled ones (they were stopped early)
    op.execute(sa.text("UPDATE experiments SET status = 'cancelled' WHERE status = 'pruned'"))
    with _experiments(sqlite) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_experiments_status"), type_="check")
        batch_op.create_check_constraint("status", OLD)
        batch_op.drop_constraint(batch_op.f("fk_experiments_study_id_studies"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_experiments_study_id_trial_number"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_experiments_study_id"))
        batch_op.drop_column("trial_params")
        batch_op.drop_column("trial_number")
        batch_op.drop_column("study_id")
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_studies_split_id"))
        batch_op.drop_index(batch_op.f("ix_studies_project_id"))
    op.drop_table("studies")
