"""Experiments; their lifecycle is ``core.statuses``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.statuses import STATUSES
from store.models.base import NEVER_REUSE_IDS, Base, UTCDateTime, utcnow
from store.models.datasets import Split


class Experiment(Base):
    """One training run.  ``spec`` is the resolved ``ExperimentSpec`` as JSON; ``attempt`` grows
    by one on every claim and fences a worker that lost its claim out of later writes."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    solver: Mapped[str] = mapped_column(String(64))  # spec.solver.name, for filtering
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    split_id: Mapped[int] = mapped_column(ForeignKey("splits.id", ondelete="RESTRICT"), index=True)
    queue: Mapped[str] = mapped_column(String(16), default="cpu")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    step: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker_host: Mapped[str | None] = mapped_column(String(255))
    device: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    # what went wrong without stopping the run (a checkpoint the disk refused); cleared once it passes
    warning: Mapped[str | None] = mapped_column(Text)
    # why a succeeded run ended before its last epoch (early stopping), null when it ran them all
    stop_reason: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    # times its training process died without reporting an outcome (see worker.supervisor)
    crashes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # a study's trial: its study, its number there (0, 1, …) and the parameters the study set
    study_id: Mapped[int | None] = mapped_column(ForeignKey("studies.id", ondelete="RESTRICT"), index=True)
    trial_number: Mapped[int | None] = mapped_column(Integer)
    trial_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    split: Mapped[Split] = relationship(lazy="raise")

    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES}", name="status"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
        Index("ix_experiments_status_enqueued_at", "status", "enqueued_at"),
        Index("ix_experiments_solver", "solver"),
        UniqueConstraint("study_id", "trial_number"),
        NEVER_REUSE_IDS,
    )
