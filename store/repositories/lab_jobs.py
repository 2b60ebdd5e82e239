"""The lifecycle every optimizer-lab job shares (``store.models.lab``: races, landscapes):
``queued → running → done | failed``.  A claim is a conditional update, so a redelivered message
finds nothing to claim; results and errors are written in one statement each."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from store.models.base import utcnow
from store.models.lab import Landscape, Race

LabJob = type[Race] | type[Landscape]

# the longest error text stored on a failed job
ERROR_CHARS = 2000


def claim(session: Session, model: LabJob, job_id: int) -> dict[str, Any] | None:
    """Mark a queued job running and return its row as a dict (``id``, ``spec`` and the owner
    columns), or None when it is not queued (already taken, finished or gone)."""
    taken = session.execute(
        update(model).where(model.id == job_id, model.status == "queued").values(status="running", started_at=utcnow())
    ).rowcount
    if not taken:
        return None
    row = session.get(model, job_id)
    return {column.name: getattr(row, column.name) for column in model.__table__.columns}


def complete(session: Session, model: LabJob, job_id: int, result: dict[str, Any]) -> None:
    session.execute(update(model).where(model.id == job_id, model.status == "running")
                    .values(status="done", result=result, error=None, finished_at=utcnow()))


def fail(session: Session, model: LabJob, job_id: int, error: str) -> None:
    session.execute(update(model).where(model.id == job_id, model.status.in_(("queued", "running")))
                    .values(status="failed", error=error[:ERROR_CHARS], finished_at=utcnow()))


ABANDONED = ("abandoned: the lab worker stopped while computing it (killed or out of memory); ask for it again, "
             "and if it keeps failing, check the lab worker's log (`descent worker --queue lab`)")


def fail_abandoned(session: Session, limit_s: float) -> int:
    """Mark failed every job still running ``limit_s`` after a lab worker took it (its worker
    died mid-job: nothing else would ever finish it); returns how many."""
    cutoff = utcnow() - timedelta(seconds=limit_s)
    count = 0
    for model in (Race, Landscape):
        count += session.execute(
            update(model).where(model.status == "running", model.started_at < cutoff)
            .values(status="failed", error=ABANDONED, finished_at=utcnow())
        ).rowcount
    return count
