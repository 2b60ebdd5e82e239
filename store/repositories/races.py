"""Races of solvers on 2-D test functions (``store.models.lab.Race``): all the SQL the api needs;
the lab worker's claim, result and error go through ``store.repositories.lab_jobs``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from store.models import Race, utcnow
from store.repositories import valid_id


def create(session: Session, *, project_id: int, created_by: int | None, spec: dict[str, Any]) -> Race:
    race = Race(project_id=project_id, created_by=created_by, status="queued", spec=spec, created_at=utcnow())
    session.add(race)
    session.flush()
    return race


def get(session: Session, race_id: int) -> Race | None:
    if not valid_id(race_id):
        return None
    return session.get(Race, race_id, populate_existing=True)


def recent(session: Session, project_ids: Sequence[int] | None, limit: int) -> list[Race]:
    """The newest ``limit`` races of ``project_ids`` (every project's when None), without loading
    their results (a race's result holds every trajectory and a contour grid)."""
    query = select(Race).options(defer(Race.result)).order_by(Race.id.desc()).limit(limit)
    if project_ids is not None:
        query = query.where(Race.project_id.in_(project_ids))
    return list(session.scalars(query.execution_options(populate_existing=True)))
