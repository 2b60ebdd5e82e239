"""Initial schema: datasets, splits, experiments, metrics with their summaries, workers.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 05:06:18.702097
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _create_datasets_and_workers()
    _create_splits()
    _create_experiments()
    _create_metric_tables()


def _create_datasets_and_workers() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("arrays_sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("n_samples", sa.Integer(), nullable=False),
        sa.Column("feature_shape", sa.JSON(), nullable=False),
        sa.Column("task", sa.String(length=16), nullable=False),
        sa.Column("n_classes", sa.Integer(), nullable=True),
        sa.Column("class_counts", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("task IN ('classification', 'regression')", name=op.f("ck_datasets_task")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workers_last_seen"), ["last_seen"], unique=False)


def _create_splits() -> None:
    """Splits freeze the row indices of each part of a dataset."""
    op.create_table(
        "splits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("builtin", sa.String(length=64), nullable=True),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("strategy", sa.String(length=16), nullable=False),
        sa.Column("fractions", sa.JSON(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("train_indices", sa.JSON(), nullable=False),
        sa.Column("val_indices", sa.JSON(), nullable=False),
        sa.Column("test_indices", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("strategy IN ('random', 'stratified')", name=op.f("ck_splits_strategy")),
        sa.CheckConstraint("(builtin IS NULL) <> (dataset_id IS NULL)", name=op.f("ck_splits_one_source")),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_splits_dataset_id_datasets"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_splits")),
    )
    with op.batch_alter_table("splits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_splits_dataset_id"), ["dataset_id"], unique=False)


def _create_experiments() -> None:
    """Experiments and the indexes the queue sweep and the list filters read."""
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("solver", sa.String(length=64), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("split_id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker_host", sa.String(length=255), nullable=True),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name=op.f("ck_experiments_status"),
        ),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name=op.f("ck_experiments_progress")),
        sa.ForeignKeyConstraint(
            ["split_id"], ["splits.id"], name=op.f("fk_experiments_split_id_splits"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.create_index("ix_experiments_solver", ["solver"], unique=False)
        batch_op.create_index(batch_op.f("ix_experiments_split_id"), ["split_id"], unique=False)
        batch_op.create_index("ix_experiments_status_enqueued_at", ["status", "enqueued_at"], unique=False)


def _create_metric_tables() -> None:
    """Points, their per-experiment summaries and the min/max rollups charts read."""
    op.create_table(
        "metric_summaries",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_step", sa.BigInteger(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("last_value", sa.Double(), nullable=True),
        sa.Column("last_wall_time", sa.Double(), nullable=False),
        sa.Column("first_wall_time", sa.Double(), nullable=False),
        sa.Column("best_step", sa.BigInteger(), nullable=True),
        sa.Column("best_value", sa.Double(), nullable=True),
        sa.Column("best_wall_time", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_metric_summaries_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "name", name=op.f("pk_metric_summaries")),
    )
    op.create_table(
        "metrics",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("wall_time", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "name", "step", name=op.f("pk_metrics")),
    )
    op.create_table(
        "metric_rollups",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("min_step", sa.BigInteger(), nullable=True),
        sa.Column("min_value", sa.Double(), nullable=True),
        sa.Column("max_step", sa.BigInteger(), nullable=True),
        sa.Column("max_value", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_metric_rollups_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "name", "width", "block", name=op.f("pk_metric_rollups")),
    )


def downgrade() -> None:
    op.drop_table("metric_rollups")
    op.drop_table("metrics")
    op.drop_table("metric_summaries")
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_index("ix_experiments_status_enqueued_at")
        batch_op.drop_index(batch_op.f("ix_experiments_split_id"))
        batch_op.drop_index("ix_experiments_solver")

    op.drop_table("experiments")
    with op.batch_alter_table("splits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_splits_dataset_id"))

    op.drop_table("splits")
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workers_last_seen"))

    op.drop_table("workers")
    op.drop_table("datasets")
