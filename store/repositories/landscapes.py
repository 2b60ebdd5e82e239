"""Loss landscapes of trained runs (``store.models.lab.Landscape``): all the SQL the api needs;
the lab worker's claim, result and error go through ``store.repositories.lab_jobs``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Experiment, Landscape, utcnow
from store.repositories import valid_id


def create(session: Session, *, experiment_id: int, created_by: int | None, spec: dict[str, Any]) -> Landscape:
    landscape = Landscape(experiment_id=experiment_id, created_by=created_by, status="queued", spec=spec,
                          created_at=utcnow())
    session.add(landscape)
    session.flush()
    return landscape


def get(session: Session, landscape_id: int) -> Landscape | None:
    if not valid_id(landscape_id):
        return None
    return session.get(Landscape, landscape_id, populate_existing=True)


def of_experiment(session: Session, experiment_id: int) -> list[Landscape]:
    """The run's landscapes, newest first."""
    return list(session.scalars(select(Landscape).where(Landscape.experiment_id == experiment_id)
                                .order_by(Landscape.id.desc()).execution_options(populate_existing=True)))


def find_same(session: Session, experiment_id: int, spec: dict[str, Any]) -> Landscape | None:
    """The run's newest landscape of exactly ``spec`` (a resolved spec, every field present) that
    is done or on its way (queued, running); a failed one does not count, so asking again retries.

    Locks the run's row for the rest of the transaction first (PostgreSQL; SQLite serialises
    writers), so two identical requests at once make one landscape: the second waits and finds it."""
    session.execute(select(Experiment.id).where(Experiment.id == experiment_id).with_for_update())
    rows = session.scalars(select(Landscape).where(Landscape.experiment_id == experiment_id,
                                                   Landscape.status != "failed").order_by(Landscape.id.desc()))
    return next((row for row in rows if row.spec == spec), None)
