"""The ``descent.train`` task: an experiment id in, the database updated.  The work is in
:func:`worker.run.run_experiment`; a redelivered duplicate finds nothing to claim and returns."""

from __future__ import annotations

import os

from core.queue import TRAIN_TASK
from worker.celery_app import app, settings
from worker.run import Runtime, run_experiment

_runtime: tuple[int, Runtime] | None = None


def runtime() -> Runtime:
    """This process's runtime; made after a fork, so prefork children never share connections."""
    global _runtime
    if _runtime is None or _runtime[0] != os.getpid():
        _runtime = (os.getpid(), Runtime.from_settings(settings))
    return _runtime[1]


@app.task(name=TRAIN_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def train_experiment(experiment_id: int) -> str:
    return run_experiment(int(experiment_id), runtime())
