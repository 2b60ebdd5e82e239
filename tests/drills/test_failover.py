"""Drill: fast failover.  Two real worker processes (``descent worker``, Celery solo pool) on a
real PostgreSQL and Redis, with the default timings (``stale_heartbeat_s`` 10 s, ``heartbeat_s``
5 s, ``requeue_after_s`` 60 s).  The worker training a run is killed with ``kill -9`` after the
run's first checkpoints; the other, idle worker must take the run over (status ``running``, its
host, attempt 2) within 15 s of the kill, resume it from the checkpoint and finish it, with every
step's metrics stored exactly once.

Queue hygiene: the dead worker's message, delivered and never acknowledged, is handed out again
after the Redis visibility timeout (5 s here, 15 minutes by default, 7 days before) and dropped
by the claim: once the run is done Redis holds no message.

Before, the run stayed ``running`` on the dead worker for the 60 s stale window (62 s measured).
Now the attempt's 0.25 s heartbeat lets a 10 s window suffice and every worker's sweep looks for
silent runs every 2 s: death → stale (≤ 10 s) → re-sent (≤ 2 s later) → claimed at once."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.worker.splits import builtin_split
from tests.worker.test_celery_worker import _spec, _wait

pytestmark = [pytest.mark.drills, pytest.mark.integration]

FAILOVER_BUDGET_S = 15.0
VISIBILITY_S = 5  # DESCENT_REDIS_VISIBILITY_TIMEOUT; 900 s by default
EPOCHS, BATCH = 8, 8


def _messages(cluster) -> tuple[int, int]:
    """(messages delivered and not acknowledged, messages waiting) in the broker."""
    import redis

    client = redis.Redis(port=cluster.redis.port)
    try:
        return client.hlen("unacked"), client.llen("cpu")
    finally:
        client.close()


def test_a_killed_workers_run_resumes_on_an_idle_worker_within_15_s(cluster):
    cluster.env["DESCENT_REDIS_VISIBILITY_TIMEOUT"] = str(VISIBILITY_S)
    spec = _spec(cluster, "digits", epochs=EPOCHS, batch_size=BATCH,
                 architecture={"name": "mlp", "depth": 2, "width": 128})
    steps_per_epoch = -(-len(builtin_split("digits").x_train) // BATCH)
    workers = [cluster.start_worker(), cluster.start_worker()]
    experiment_id = cluster.submit(spec)
    first = _wait(lambda: (e := cluster.experiment(experiment_id)).epoch >= 2 and e, 180,
                  "two epochs (a checkpoint) to pass", interval_s=0.05)
    pid = int(first.worker_host.rsplit(":", 1)[1])
    (training,) = [w for w in workers if os.getpgid(pid) == w.pid]
    (idle,) = [w for w in workers if w is not training]

    os.killpg(training.pid, signal.SIGKILL)
    killed = time.monotonic()
    training.wait()
    at_kill = cluster.experiment(experiment_id)
    assert at_kill.status == "running" and at_kill.attempt == 1 and at_kill.step < EPOCHS * steps_per_epoch

    taken = _wait(lambda: (e := cluster.experiment(experiment_id)).attempt == 2 and e,
                  FAILOVER_BUDGET_S + 30, "another worker to take the run over", interval_s=0.05)
    failover_s = time.monotonic() - killed
    print(f"\nfailover: run {experiment_id} running on the idle worker {failover_s:.2f} s after kill -9 "
          f"(was at step {at_kill.step}, epoch {at_kill.epoch})")
    assert taken.status == "running"
    assert os.getpgid(int(taken.worker_host.rsplit(":", 1)[1])) == idle.pid
    assert failover_s < FAILOVER_BUDGET_S, f"failover took {failover_s:.1f} s"

    done = cluster.wait_status(experiment_id, ("succeeded", "failed"), timeout_s=180)
    assert done.status == "succeeded", done.error
    assert done.attempt == 2
    assert f"experiment {experiment_id}: resuming from" in cluster.logs.read_text()
    assert cluster.steps(experiment_id, "train/loss") == list(range(1, EPOCHS * steps_per_epoch + 1))
    assert cluster.steps(experiment_id, "val/loss") == [e * steps_per_epoch for e in range(1, EPOCHS + 1)]

    # queue hygiene: the dead worker's message (and the live run's, handed out again each
    # visibility timeout) came back and was dropped by the claim; nothing lingers in Redis.  (How
    # many are unacknowledged at the kill itself depends on timing: with a 5 s timeout the run's
    # message may already have been handed out again and dropped.  With the old 7-day timeout the
    # dead worker's delivery stays unacknowledged, and this wait fails: checked by hand.)
    _wait(lambda: _messages(cluster) == (0, 0), 6 * VISIBILITY_S, "Redis to hold no message of the finished run",
          interval_s=0.2)
    assert "not claimable (duplicate delivery or finished); skipping" in cluster.logs.read_text()
