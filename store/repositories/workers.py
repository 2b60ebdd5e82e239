"""Worker presence: each worker beats every few seconds; the api routes ``device: auto`` to
the ``gpu`` queue only while a worker serving it has been seen recently."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.settings import Settings
from store.models import Worker, utcnow


def beat(session: Session, worker_id: str, host: str, queues: Sequence[str], gpus: int) -> None:
    worker = session.get(Worker, worker_id)
    now = utcnow()
    if worker is None:
        session.add(Worker(id=worker_id, host=host, queues=list(queues), gpus=gpus, started_at=now, last_seen=now))
    else:
        worker.host, worker.queues, worker.gpus, worker.last_seen = host, list(queues), gpus, now
    session.flush()


def alive_within_s(settings: Settings) -> float:
    """How recently a worker must have beaten to count as alive, for routing ``device: auto`` and
    for the queue's answers alike: the stale-run window, in which a live worker beats at least
    five times (``worker.presence`` beats every ``stale_heartbeat_s / 5`` at most)."""
    return settings.stale_heartbeat_s


def alive_workers(session: Session, within_s: float) -> list[Worker]:
    cutoff = utcnow() - timedelta(seconds=within_s)
    return list(session.scalars(select(Worker).where(Worker.last_seen >= cutoff).order_by(Worker.id)))


def alive(session: Session, queue: str, within_s: float) -> bool:
    """Whether a worker consuming ``queue`` was seen in the last ``within_s`` seconds."""
    return any(queue in (w.queues or []) for w in alive_workers(session, within_s))


def forget(session: Session, worker_id: str) -> None:
    """A worker shutting down cleanly removes itself, so routing reacts at once."""
    worker = session.get(Worker, worker_id)
    if worker is not None:
        session.delete(worker)
        session.flush()
