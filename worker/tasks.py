"""The ``descent.train`` task: an experiment id in, the database updated.  The work is in
:func:`worker.supervisor.supervise` (the run trains in a supervised child process); a redelivered
duplicate finds nothing to claim and returns.

A claim that cannot reach the database is not an outcome: the message is sent again with a
countdown (``CLAIM_RETRY_S``, doubling up to ``CLAIM_RETRY_MAX_S``, without limit) and this
delivery is acknowledged only once the retry is on the broker, so a run queued while the
database is down starts within seconds of its return instead of waiting for the re-send sweep."""

from __future__ import annotations

import logging
import os

from core.queue import TRAIN_TASK
from worker.celery_app import app, settings
from worker.run import DatabaseUnavailable, Runtime
from worker.supervisor import supervise

log = logging.getLogger(__name__)

# the first retry's countdown, and the most any retry waits (so the run starts at most this long after the database returns)
CLAIM_RETRY_S = 0.5
CLAIM_RETRY_MAX_S = 4.0

_runtime: tuple[int, Runtime] | None = None


def runtime() -> Runtime:
    """This process's runtime; made after a fork, so prefork children never share connections."""
    global _runtime
    if _runtime is None or _runtime[0] != os.getpid():
        _runtime = (os.getpid(), Runtime.from_settings(settings))
    return _runtime[1]


def claim_retry_countdown(retries: int) -> float:
    return min(CLAIM_RETRY_S * 2 ** retries, CLAIM_RETRY_MAX_S)


@app.task(name=TRAIN_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
          max_retries=None)
def train_experiment(self, experiment_id: int) -> str:
    try:
        return supervise(int(experiment_id), runtime())
    except DatabaseUnavailable as exc:
        countdown = claim_retry_countdown(self.request.retries)
        log.warning("%s; retrying in %.1f s (retry %d)", exc, countdown, self.request.retries + 1)
        raise self.retry(countdown=countdown, exc=exc) from None
