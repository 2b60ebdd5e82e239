"""How deep each queue is and why each queued run waits, read from the database alone (never the
broker): the experiments' and lab jobs' statuses and the workers' heartbeats.

A worker is alive while its last beat is within ``within_s`` (``workers.alive_within_s``, the
rule routing uses too) and busy while a running experiment names it as its ``worker_host``.  A
run's position counts every queued run of its queue, of every project, oldest first.

The ``lab`` queue (``core.queue.LAB_QUEUE``) holds the optimizer lab's races and landscapes:
its counts are theirs, its workers the alive ones whose beat lists ``lab``.  A lab job does not
record the worker that took it, so its idle workers are the alive ones less its running jobs
(at least 0)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.choices import choice
from core.queue import LAB_QUEUE, QUEUES
from store.models import Experiment, utcnow
from store.models.lab import Landscape, Race
from store.repositories import workers

WaitCause = choice(
    "WaitCause", ("unsent", "no_worker", "busy", "starting"),
    "Why a queued run waits: `unsent`, the broker has not taken its message yet; `no_worker`, no alive worker "
    "serves its queue; `busy`, its queue's workers are taking the runs ahead of it; `starting`, an idle worker "
    "takes it within seconds.",
)


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    queued: int
    running: int
    workers: int  # alive workers serving the queue
    idle_workers: int  # of those, the ones no running experiment names (lab: those beyond its running jobs)
    oldest_queued_s: float | None  # how long its oldest queued run has waited


@dataclass(frozen=True)
class WaitingRun:
    id: int
    name: str
    project_id: int
    queue: str
    position: int  # 1-based, in its queue across all projects
    waited_s: float
    cause: WaitCause


def _seconds_since(then: datetime, now: datetime) -> float:
    return max(0.0, (now - then).total_seconds())


def depths(session: Session, within_s: float, now: datetime | None = None) -> dict[str, QueueDepth]:
    """Every queue's counts (all projects) and its alive and idle workers: the training queues
    (``QUEUES``) from the experiments, ``lab`` from the races and landscapes."""
    now = now or utcnow()
    counts: dict[tuple[str, str], int] = {}
    oldest: dict[str, datetime] = {}
    rows = session.execute(
        select(Experiment.queue, Experiment.status, func.count(), func.min(Experiment.created_at))
        .where(Experiment.status.in_(("queued", "running")))
        .group_by(Experiment.queue, Experiment.status)
    )
    for queue, status, count, first in rows:
        counts[queue, status] = count
        if status == "queued":
            oldest[queue] = first
    alive = workers.alive_workers(session, within_s)
    busy = set(session.scalars(
        select(Experiment.worker_host).distinct()
        .where(Experiment.status == "running", Experiment.worker_host.in_([w.id for w in alive]))
    )) if alive else set()
    result = {}
    for queue in QUEUES:
        serving = [w for w in alive if queue in (w.queues or [])]
        result[queue] = QueueDepth(
            queue=queue, queued=counts.get((queue, "queued"), 0), running=counts.get((queue, "running"), 0),
            workers=len(serving), idle_workers=sum(w.id not in busy for w in serving),
            oldest_queued_s=_seconds_since(oldest[queue], now) if queue in oldest else None,
        )
    result[LAB_QUEUE] = _lab_depth(session, sum(LAB_QUEUE in (w.queues or []) for w in alive), now)
    return result


def _lab_depth(session: Session, alive_workers: int, now: datetime) -> QueueDepth:
    """The ``lab`` queue: queued and running races and landscapes (every project's), ``alive_workers``
    serving it, of which those beyond its running jobs idle."""
    counts = {"queued": 0, "running": 0}
    oldest: datetime | None = None
    for model in (Race, Landscape):
        rows = session.execute(
            select(model.status, func.count(), func.min(model.created_at))
            .where(model.status.in_(tuple(counts))).group_by(model.status)
        )
        for status, count, first in rows:
            counts[status] += count
            if status == "queued":
                oldest = first if oldest is None else min(oldest, first)
    return QueueDepth(
        queue=LAB_QUEUE, queued=counts["queued"], running=counts["running"], workers=alive_workers,
        idle_workers=max(0, alive_workers - counts["running"]),
        oldest_queued_s=_seconds_since(oldest, now) if oldest is not None else None,
    )


def cause(sent: bool, depth: QueueDepth, position: int) -> WaitCause:
    """Why the run at ``position`` of ``depth``'s queue waits."""
    if not sent:
        return "unsent"
    if depth.workers == 0:
        return "no_worker"
    if position > depth.idle_workers:
        return "busy"
    return "starting"


def waiting(session: Session, depth_of: dict[str, QueueDepth], project_ids: Sequence[int] | None, limit: int,
            now: datetime | None = None) -> list[WaitingRun]:
    """The queued runs of ``project_ids`` (None: every project's), by queue then position, at most
    ``limit``; each run's position counts the queued runs of every project."""
    now = now or utcnow()
    ranked = select(
        Experiment.id, Experiment.name, Experiment.project_id, Experiment.queue, Experiment.created_at,
        Experiment.enqueued_at,
        func.row_number().over(partition_by=Experiment.queue, order_by=(Experiment.created_at, Experiment.id))
        .label("position"),
    ).where(Experiment.status == "queued").subquery()
    query = select(ranked)
    if project_ids is not None:
        query = query.where(ranked.c.project_id.in_(list(project_ids)))
    query = query.order_by(ranked.c.queue, ranked.c.position).limit(limit)
    return [
        WaitingRun(id=row.id, name=row.name, project_id=row.project_id, queue=row.queue, position=row.position,
                   waited_s=_seconds_since(row.created_at, now),
                   cause=cause(row.enqueued_at is not None, depth_of[row.queue], row.position))
        for row in session.execute(query)
    ]
