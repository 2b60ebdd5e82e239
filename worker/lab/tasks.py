"""The lab's Celery tasks: a job id in, the job's row updated (``store.repositories.lab_jobs``).
The computation itself knows nothing of Celery or SQL: it takes the claimed row and returns the
result as JSON-ready data, or raises with a message for the user."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from core.queue import LANDSCAPE_TASK, RACE_TASK
from store.db import session_scope
from store.models.lab import Landscape, Race
from store.repositories import lab_jobs
from worker.celery_app import app
from worker.run import user_message
from worker.tasks import runtime

log = logging.getLogger(__name__)

Compute = Callable[[dict[str, Any]], dict[str, Any]]


def run_job(model: lab_jobs.LabJob, job_id: int, compute: Compute) -> str:
    """Claim the job, compute outside any transaction, store the result or the error."""
    sessions = runtime().sessions
    with session_scope(sessions) as session:
        job = lab_jobs.claim(session, model, job_id)
    if job is None:
        return "not claimed"
    try:
        result = compute(job)
    except Exception as exc:  # the user's job failed; the worker carries on
        log.warning("%s %d failed: %s", model.__tablename__, job_id, exc, exc_info=True)
        with session_scope(sessions) as session:
            lab_jobs.fail(session, model, job_id, user_message(exc))
        return "failed"
    with session_scope(sessions) as session:
        lab_jobs.complete(session, model, job_id, result)
    return "done"


@app.task(name=RACE_TASK, acks_late=True, ignore_result=True)
def race(race_id: int) -> str:
    from worker.lab.race import run_race

    return run_job(Race, int(race_id), run_race)


@app.task(name=LANDSCAPE_TASK, acks_late=True, ignore_result=True)
def landscape(landscape_id: int) -> str:
    from worker.lab.landscape import compute_landscape

    return run_job(Landscape, int(landscape_id), lambda job: compute_landscape(job, runtime()))
