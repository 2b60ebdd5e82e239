"""The queue's depth (the training queues and the optimizer lab's) and each waiting run's cause,
put in words that say what to do."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.auth import access
from api.auth.principal import Principal
from api.queue.schemas import QueueDepthPublic, QueuePublic, WaitingPublic
from core.settings import Settings
from store.repositories import queue as repo
from store.repositories import workers as workers_repo

# how to start a worker for each queue: the CLI, and the service in docker-compose.yml
START_WORKER = {
    "gpu": "`descent worker --queue gpu` (with compose: `docker compose up -d worker`)",
    "cpu": "`descent worker --queue cpu` (with compose: `docker compose --profile cpu up -d worker-cpu`)",
    "lab": "`descent worker --queue lab` (with compose: `docker compose up -d worker-lab`)",
}


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def reason(run: repo.WaitingRun, depth: repo.QueueDepth) -> str:
    """``run``'s cause as a sentence naming what to do about it."""
    queue = f"the {run.queue!r} queue"
    ahead = _count(run.position - 1, "run")
    if run.cause == "unsent":
        return ("not handed to the broker yet: it did not answer when the run was sent; the api sends it as soon as "
                "the broker answers (check the broker: GET /health)")
    if run.cause == "no_worker":
        return f"no worker is serving {queue}; start one: {START_WORKER[run.queue]}"
    if run.cause == "busy":
        if depth.idle_workers == 0:
            workers = "the one worker" if depth.workers == 1 else f"all {depth.workers} workers"
            verb = "is" if depth.workers == 1 else "are"
            return (f"{workers} on {queue} {verb} busy; {ahead} ahead of it: it starts when one finishes "
                    f"(more workers: {START_WORKER[run.queue]})")
        return (f"{ahead} ahead of it on {queue} and {_count(depth.idle_workers, 'idle worker')} to take them: it "
                f"starts once they have started (more workers: {START_WORKER[run.queue]})")
    return f"about to start: an idle worker on {queue} takes it within seconds"


def overview(session: Session, settings: Settings, principal: Principal, limit: int) -> QueuePublic:
    """Every queue's depth (all projects) and the queued runs of the projects ``principal`` may read."""
    depths = repo.depths(session, workers_repo.alive_within_s(settings))
    runs = repo.waiting(session, depths, access.visible_projects(principal), limit)
    return QueuePublic(
        queues={name: QueueDepthPublic(queued=d.queued, running=d.running, workers=d.workers,
                                       idle_workers=d.idle_workers, oldest_queued_s=d.oldest_queued_s)
                for name, d in depths.items()},
        waiting=[WaitingPublic(id=r.id, name=r.name, project_id=r.project_id, queue=r.queue, position=r.position,
                               waited_s=r.waited_s, cause=r.cause, reason=reason(r, depths[r.queue])) for r in runs],
    )
