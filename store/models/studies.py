"""Studies: hyperparameter searches whose trials are experiments (``Experiment.study_id``); the
search itself is ``core.studies``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.statuses import STUDY_STATUSES
from store.models.base import NEVER_REUSE_IDS, Base, UTCDateTime, utcnow


class Study(Base):
    """One study.  ``spec`` is the validated ``core.studies.StudySpec`` as JSON, its ``base`` the
    resolved experiment spec every trial starts from."""

    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="RESTRICT"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="search")  # search | tournament
    status: Mapped[str] = mapped_column(String(16), default="running")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    split_id: Mapped[int] = mapped_column(ForeignKey("splits.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # why it stopped or what went wrong proposing trials; null while all is well
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(f"status IN {STUDY_STATUSES}", name="study_status"),
        NEVER_REUSE_IDS,
    )
