"""The optimizer lab's jobs: races of solvers on 2-D test functions and loss landscapes of
trained runs.  Each is computed once by a lab worker and stored, so a second look is instant;
``spec`` is the validated request as JSON, ``result`` what the worker computed.  Both share the
lifecycle columns of :class:`LabJobColumns` (``store.repositories.lab_jobs``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from core.statuses import LAB_STATUSES
from store.models.base import NEVER_REUSE_IDS, Base, UTCDateTime, utcnow


class LabJobColumns:
    """What every lab job holds: who asked, where it is, the request and the answer."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when a lab worker claimed it
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @declared_attr
    def created_by(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


def _lab_job_table_args(name: str) -> tuple:
    return (CheckConstraint(f"status IN {LAB_STATUSES}", name=name), NEVER_REUSE_IDS)


class Race(LabJobColumns, Base):
    """Up to eight solver configurations stepping on one 2-D test function from one start."""

    __tablename__ = "races"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)

    __table_args__ = _lab_job_table_args("race_status")


class Landscape(LabJobColumns, Base):
    """The loss along one or two filter-normalised random directions around a finished run's
    weights (Li et al. 2018); belongs to the run and goes with it."""

    __tablename__ = "landscapes"

    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)

    __table_args__ = _lab_job_table_args("landscape_status")
