"""Studies and their trials (experiments with a ``study_id``): all the SQL the api's study
controller and the worker's pruning check need."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.models import Experiment, Metric, Study, utcnow
from store.repositories import valid_id


def create(session: Session, *, project_id: int, created_by: int | None, name: str, kind: str,
           spec: dict[str, Any], split_id: int) -> Study:
    study = Study(project_id=project_id, created_by=created_by, name=name, kind=kind, status="running", spec=spec,
                  split_id=split_id, created_at=utcnow())
    session.add(study)
    session.flush()
    return study


def get(session: Session, study_id: int) -> Study | None:
    if not valid_id(study_id):
        return None
    return session.get(Study, study_id, populate_existing=True)


def list_page(session: Session, *, project_ids: list[int] | None, limit: int, offset: int
              ) -> tuple[list[Study], int]:
    """Newest first; ``project_ids`` None: every project's."""
    query = select(Study)
    if project_ids is not None:
        query = query.where(Study.project_id.in_(project_ids))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Study.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), total


def running_ids(session: Session) -> list[int]:
    return list(session.scalars(select(Study.id).where(Study.status == "running").order_by(Study.id)))


def lock_running(session: Session, study_id: int) -> Study | None:
    """The study, locked for this transaction, if it is running and no other transaction holds it
    (PostgreSQL ``FOR UPDATE SKIP LOCKED``: two api processes never advance one study at once;
    SQLite serialises writers anyway)."""
    return session.scalars(
        select(Study).where(Study.id == study_id, Study.status == "running")
        .with_for_update(skip_locked=True).execution_options(populate_existing=True)
    ).one_or_none()


def trials(session: Session, study_id: int) -> list[Experiment]:
    return list(session.scalars(
        select(Experiment).where(Experiment.study_id == study_id).order_by(Experiment.trial_number)
        .execution_options(populate_existing=True)))


def counts(session: Session, study_ids: list[int]) -> dict[int, dict[str, int]]:
    """``{study_id: {status: trials}}``."""
    out: dict[int, dict[str, int]] = defaultdict(dict)
    if study_ids:
        rows = session.execute(
            select(Experiment.study_id, Experiment.status, func.count())
            .where(Experiment.study_id.in_(study_ids)).group_by(Experiment.study_id, Experiment.status))
        for study_id, status, n in rows:
            out[study_id][status] = n
    return out


def epoch_values(session: Session, experiment_ids: list[int], metric: str) -> dict[int, dict[int, float]]:
    """``{experiment_id: {epoch: value}}`` of ``metric`` (its finite values recorded with an epoch)."""
    out: dict[int, dict[int, float]] = defaultdict(dict)
    if not experiment_ids:
        return out
    rows = session.execute(
        select(Metric.experiment_id, Metric.epoch, Metric.value)
        .where(Metric.experiment_id.in_(experiment_ids), Metric.name == metric, Metric.epoch.is_not(None),
               Metric.value.is_not(None))
        .order_by(Metric.experiment_id, Metric.step))
    for experiment_id, epoch, value in rows:
        out[experiment_id][epoch] = value
    return out


def finish(session: Session, study_id: int, status: str, note: str | None = None) -> bool:
    """End a running study as ``done`` or ``stopped``; False when it was not running."""
    result = session.execute(
        update(Study).where(Study.id == study_id, Study.status == "running")
        .values(status=status, finished_at=utcnow(), note=note).returning(Study.id)
        .execution_options(synchronize_session=False))
    return result.scalar_one_or_none() is not None


def set_note(session: Session, study_id: int, note: str | None) -> None:
    session.execute(update(Study).where(Study.id == study_id).values(note=note)
                    .execution_options(synchronize_session=False))
