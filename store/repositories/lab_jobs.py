"""The lifecycle every optimizer-lab job shares (``store.models.lab``: races, landscapes):
``queued → running → done | failed``.  A claim is a conditional update, so a redelivered message
finds nothing to claim; results and errors are written in one statement each."""

from __future__ import annotations

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
        update(model).where(model.id == job_id, model.status == "queued").values(status="running")
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
