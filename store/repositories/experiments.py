"""Experiment lifecycle.  Every state change a worker makes is one conditional UPDATE, so a
duplicate delivery, a stale worker or a cancelled run can never overwrite a newer state.

``attempt`` is the fencing token: ``claim`` increments it, and ``heartbeat``/``finish`` only
take effect while the caller's attempt is still the current one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, delete, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from core.statuses import FINISHED
from store.models import Experiment, Metric, MetricSummary, Split, utcnow
from store.repositories import valid_id


@dataclass(frozen=True)
class HeartbeatResult:
    """``owned``: the caller's attempt is still current and the run is still ``running``;
    ``cancel_requested``: the user asked to stop (the worker ends the run as ``cancelled``)."""

    owned: bool
    cancel_requested: bool

    @property
    def keep_going(self) -> bool:
        return self.owned and not self.cancel_requested


def _ago(seconds: float, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(seconds=seconds)


def create(session: Session, *, name: str, spec: dict[str, Any], solver: str, tags: list[str],
           split_id: int, queue: str, study_id: int | None = None, trial_number: int | None = None,
           trial_params: dict[str, Any] | None = None) -> Experiment:
    """A queued experiment, in its split's project (a study's trial with ``study_id``)."""
    split = session.get(Split, split_id) if valid_id(split_id) else None
    experiment = Experiment(
        project_id=split.project_id if split is not None else None, name=name, spec=spec, solver=solver,
        tags=list(tags), split_id=split_id, queue=queue, status="queued",
        progress=0.0, epoch=0, step=0, attempt=0, cancel_requested=False, created_at=utcnow(),
        study_id=study_id, trial_number=trial_number, trial_params=trial_params,
    )
    session.add(experiment)
    session.flush()
    return experiment


def get(session: Session, experiment_id: int) -> Experiment | None:
    if not valid_id(experiment_id):
        return None
    return session.get(Experiment, experiment_id, populate_existing=True)


def count_active(session: Session, project_id: int) -> int:
    """How many of the project's experiments are queued or running."""
    return session.scalar(select(func.count()).select_from(Experiment).where(
        Experiment.project_id == project_id, Experiment.status.in_(("queued", "running")))) or 0


def get_many(session: Session, experiment_ids: Sequence[int]) -> dict[int, Experiment]:
    """The experiments among ``experiment_ids`` that exist, by id."""
    ids = [i for i in experiment_ids if valid_id(i)]
    return {e.id: e for e in session.scalars(select(Experiment).where(Experiment.id.in_(ids)))}


def _filtered(project_ids: Sequence[int] | None, status: str | None, split_id: int | None, solver: str | None,
              *columns: Any) -> Select:
    """``project_ids``: only these projects' experiments (None: every project's)."""
    query: Select = select(Experiment, *columns)
    if project_ids is not None:
        query = query.where(Experiment.project_id.in_(list(project_ids)))
    if status is not None:
        query = query.where(Experiment.status == status)
    if split_id is not None:
        query = query.where(Experiment.split_id == split_id)
    if solver is not None:
        query = query.where(Experiment.solver == solver)
    return query


def _page(session: Session, query: Select, count: Select, tag: str | None, limit: int, offset: int
          ) -> tuple[list[Any], int]:
    """One page of ``query``'s rows, newest first, and the total count of ``count``'s."""
    if tag is None:
        total = session.scalar(select(func.count()).select_from(count.subquery())) or 0
        rows = session.execute(query.order_by(Experiment.id.desc()).limit(limit).offset(offset)).all()
        return list(rows), total
    # tags are a JSON list (portable across both databases); filter them here, not in SQL
    matching = [r for r in session.execute(query.order_by(Experiment.id.desc())) if tag in (r[0].tags or [])]
    return matching[offset:offset + limit], len(matching)


def list_page(
    session: Session, *, project_ids: Sequence[int] | None = None, status: str | None = None, tag: str | None = None,
    split_id: int | None = None, solver: str | None = None, limit: int = 50, offset: int = 0,
) -> tuple[list[Experiment], int]:
    """One page, newest first, and the total count of matches."""
    query = _filtered(project_ids, status, split_id, solver)
    rows, total = _page(session, query, query, tag, limit, offset)
    return [r[0] for r in rows], total


def _best_of(names: Sequence[str]):
    """The join condition picking each experiment's summary of the first of ``names`` that has a
    finite best value (a correlated subquery on the summary's primary key when there are several)."""
    condition = and_(MetricSummary.experiment_id == Experiment.id, MetricSummary.best_value.is_not(None))
    if len(names) == 1:
        return and_(condition, MetricSummary.name == names[0])
    other = aliased(MetricSummary)
    first = (
        select(other.name)
        .where(other.experiment_id == Experiment.id, other.name.in_(list(names)), other.best_value.is_not(None))
        .order_by(case({n: i for i, n in enumerate(names)}, value=other.name))
        .limit(1)
        .correlate(Experiment)
        .scalar_subquery()
    )
    return and_(condition, MetricSummary.name == first)


def list_page_with_best(
    session: Session, *, best: Sequence[str], project_ids: Sequence[int] | None = None, status: str | None = None,
    tag: str | None = None, split_id: int | None = None, solver: str | None = None, limit: int = 50, offset: int = 0,
) -> tuple[list[tuple[Experiment, MetricSummary | None]], int]:
    """``list_page`` with each experiment's summary of the first metric of ``best`` it has a
    best value of (None when it has none), read with the page in one query."""
    if not best:
        raise ValueError("name at least one metric")
    query = _filtered(project_ids, status, split_id, solver, MetricSummary).outerjoin(MetricSummary, _best_of(best))
    rows, total = _page(session, query, _filtered(project_ids, status, split_id, solver), tag, limit, offset)
    return [(r[0], r[1]) for r in rows], total


def claim(session: Session, experiment_id: int, worker_host: str, device: str,
          stale_after_s: float) -> Experiment | None:
    """Take the experiment for this worker, or ``None`` when it is not available.

    One conditional UPDATE: it is taken when ``queued``, or when ``running`` but silent for
    longer than ``stale_after_s`` (its worker died: the new attempt resumes from the last
    checkpoint).  A duplicate delivery of a running or finished experiment changes nothing."""
    now = utcnow()
    statement = (
        update(Experiment)
        .where(
            Experiment.id == experiment_id,
            Experiment.cancel_requested.is_(False),
            or_(
                Experiment.status == "queued",
                and_(Experiment.status == "running", Experiment.heartbeat_at < _ago(stale_after_s, now)),
            ),
        )
        .values(
            status="running",
            attempt=Experiment.attempt + 1,
            started_at=func.coalesce(Experiment.started_at, now),
            heartbeat_at=now,
            worker_host=worker_host,
            device=device,
            error=None,
            warning=None,  # a worker has it now: "no worker seen" no longer holds; a checkpoint's trouble is re-told
        )
        .returning(Experiment.id)
        .execution_options(synchronize_session=False)
    )
    if session.execute(statement).scalar_one_or_none() is None:
        return None
    return get(session, experiment_id)


def heartbeat(session: Session, experiment_id: int, attempt: int, *, progress: float, epoch: int,
              step: int) -> HeartbeatResult:
    """Record progress if ``attempt`` still owns the run; tell the worker whether to go on."""
    return _beat(session, experiment_id, attempt,
                 progress=min(1.0, max(0.0, float(progress))), epoch=epoch, step=step)


def keepalive(session: Session, experiment_id: int, attempt: int) -> HeartbeatResult:
    """The supervising worker's beat: prove the attempt alive without touching its progress
    (the training process records that), and say whether to go on, like :func:`heartbeat`."""
    return _beat(session, experiment_id, attempt)


def _beat(session: Session, experiment_id: int, attempt: int, **values: Any) -> HeartbeatResult:
    statement = (
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.attempt == attempt, Experiment.status == "running")
        .values(heartbeat_at=utcnow(), **values)
        .returning(Experiment.cancel_requested)
        .execution_options(synchronize_session=False)
    )
    cancel = session.execute(statement).scalar_one_or_none()
    if cancel is None:
        return HeartbeatResult(owned=False, cancel_requested=_cancel_requested(session, experiment_id))
    return HeartbeatResult(owned=True, cancel_requested=bool(cancel))


def record_crash(session: Session, experiment_id: int, attempt: int) -> int | None:
    """Count one death of the run's training process (killed, or ended without an outcome);
    returns the run's count of them, or None when ``attempt`` no longer owns the run."""
    statement = (
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.attempt == attempt, Experiment.status == "running")
        .values(crashes=Experiment.crashes + 1)
        .returning(Experiment.crashes)
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).scalar_one_or_none()


def _set_fenced(session: Session, experiment_id: int, attempt: int, **values: Any) -> bool:
    """Write ``values`` on the run if ``attempt`` still owns it and it is running; False when it
    does not (the write is dropped, like a stale heartbeat's)."""
    statement = (
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.attempt == attempt, Experiment.status == "running")
        .values(**values)
        .returning(Experiment.id)
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).scalar_one_or_none() is not None


def set_stop_reason(session: Session, experiment_id: int, attempt: int, reason: str | None) -> bool:
    """Record why the run ends before its last epoch (early stopping), fenced by ``attempt``."""
    return _set_fenced(session, experiment_id, attempt, stop_reason=reason)


def set_warning(session: Session, experiment_id: int, attempt: int, warning: str | None) -> bool:
    """Record ``warning`` on the run (None clears it), fenced by ``attempt``."""
    return _set_fenced(session, experiment_id, attempt, warning=warning)


def _cancel_requested(session: Session, experiment_id: int) -> bool:
    row = session.execute(
        select(Experiment.cancel_requested, Experiment.status).where(Experiment.id == experiment_id)
    ).one_or_none()
    return row is None or bool(row.cancel_requested) or row.status == "cancelled"


def finish(session: Session, experiment_id: int, attempt: int, status: str, error: str | None = None) -> bool:
    """End the run as ``succeeded``, ``failed`` or ``cancelled``; False when ``attempt`` no longer
    owns it (another worker took over, or it already ended)."""
    if status not in FINISHED:
        raise ValueError(f"status must be one of {FINISHED}, got {status!r}")
    values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "error": error}
    if status == "succeeded":
        values["progress"] = 1.0
    statement = (
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.attempt == attempt, Experiment.status == "running")
        .values(**values)
        .returning(Experiment.id)
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).scalar_one_or_none() is not None


def request_cancel(session: Session, experiment_id: int) -> str | None:
    """Cancel: a queued run is ``cancelled`` at once; a running one gets ``cancel_requested``
    and its worker stops within a step.  Returns the status afterwards (None: no such id);
    a finished run is left as it is."""
    now = utcnow()
    session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.status == "queued")
        .values(status="cancelled", finished_at=now, cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.status == "running")
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    return session.scalar(select(Experiment.status).where(Experiment.id == experiment_id))


def delete_finished(session: Session, experiment_id: int) -> bool:
    """Delete an experiment that is not queued or running (its metrics go with it)."""
    session.execute(
        delete(Metric).where(
            Metric.experiment_id == experiment_id,
            select(Experiment.id).where(Experiment.id == experiment_id, Experiment.status.in_(FINISHED)).exists(),
        )
    )
    result = session.execute(
        delete(Experiment)
        .where(Experiment.id == experiment_id, Experiment.status.in_(FINISHED))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def edit(session: Session, experiment_id: int, *, name: str, tags: list[str], spec: dict[str, Any]) -> None:
    """Set an experiment's name, tags and stored spec (which holds them too) in one UPDATE; the
    columns the worker writes (status, progress, attempt...) are not touched."""
    session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id)
        .values(name=name, tags=list(tags), spec=spec)
        .execution_options(synchronize_session=False)
    )


def mark_enqueued(session: Session, experiment_ids: Sequence[int]) -> None:
    if experiment_ids:
        session.execute(
            update(Experiment)
            .where(Experiment.id.in_(list(experiment_ids)))
            .values(enqueued_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def requeue_candidates(session: Session, older_than_s: float, limit: int = 100) -> list[tuple[int, str]]:
    """``(id, queue)`` of runs whose message may be lost: ``queued`` and not (re-)sent for
    ``older_than_s``, or ``running`` whose worker went silent that long and that was not re-sent
    since.  Sending them again is safe: ``claim`` lets exactly one delivery run them."""
    cutoff = _ago(older_than_s)
    last_sent = func.coalesce(Experiment.enqueued_at, Experiment.created_at)
    query = (
        select(Experiment.id, Experiment.queue)
        .where(
            last_sent < cutoff,
            Experiment.cancel_requested.is_(False),
            or_(
                Experiment.status == "queued",
                and_(Experiment.status == "running", Experiment.heartbeat_at < cutoff),
            ),
        )
        .order_by(Experiment.id)
        .limit(limit)
    )
    return [(row.id, row.queue) for row in session.execute(query)]


def cancel_abandoned(session: Session, older_than_s: float) -> list[int]:
    """Runs whose cancel was requested but whose worker went silent: nobody is left to end them."""
    statement = (
        update(Experiment)
        .where(
            Experiment.status == "running",
            Experiment.cancel_requested.is_(True),
            Experiment.heartbeat_at < _ago(older_than_s),
        )
        .values(status="cancelled", finished_at=utcnow())
        .returning(Experiment.id)
        .execution_options(synchronize_session=False)
    )
    return list(session.execute(statement).scalars())
