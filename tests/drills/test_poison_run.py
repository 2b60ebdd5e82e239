"""Drill: a poison run, one whose training runs out of memory on every try.  A real worker process
(``descent worker``) on a real PostgreSQL and Redis, put in a memory cgroup too small for the run
(2.5 GiB; the run needs ~7 GiB by estimate), so the kernel's OOM killer strikes for real; where
no memory cgroup can be made, a SIGKILL of the training process stands in for the kernel.

Before, the worker process itself was killed 4–5 s after claiming, nothing was logged, the
stale-run re-send gave the run to the next worker, which died too, while the run showed
``running 0%``.  Now the run trains in a child process: the supervisor counts each death, and
after ``DESCENT_MAX_ATTEMPTS`` (2) the run fails with the reason (out of memory, the estimate,
what to change); the worker lives on and starts the next run at once, whose every step's
metrics are stored exactly once."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import pytest

from tests.drills.cgroups import memory_limit
from tests.drills.shown import shown
from tests.worker.processes import spare_processes, training_processes
from tests.worker.records import assert_every_step_once, metric_steps
from tests.worker.splits import builtin_split
from tests.worker.test_celery_worker import _spec, _wait
from worker import oom
from worker.supervisor import Death

pytestmark = [pytest.mark.drills, pytest.mark.integration]

# the worker (~0.3 GiB) and its spare training process (~0.4 GiB) fit with room to spare; the run does not
LIMIT_BYTES = 2560 * 2**20
POISON = {"name": "mlp", "depth": 8, "width": 8192}  # ~470 M parameters: ~7 GiB to train with adam
BATCH = 64


def _kill_every_training_process(parent: int, stop: threading.Event) -> None:
    """The kernel's part where no memory cgroup can be made: SIGKILL each training process."""
    while not stop.is_set():
        for pid in training_processes(parent):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def test_a_run_that_runs_out_of_memory_fails_with_the_reason_and_the_worker_takes_the_next(cluster, capsys):
    with memory_limit(LIMIT_BYTES) as cgroup:
        worker = cluster.start_worker()
        stop = threading.Event()
        if cgroup is not None:
            cgroup.add(worker.pid)  # the training processes it starts from now on are in it too
            spare = _wait(lambda: spare_processes(worker.pid), 30, "the worker's spare training process")
            for pid in spare:  # started ahead, before the worker was moved
                cgroup.add(pid)
            expected = Death(-signal.SIGKILL, True)
        else:
            threading.Thread(target=_kill_every_training_process, args=(worker.pid, stop), daemon=True).start()
            expected = Death(-signal.SIGKILL, None if oom.oom_kills() is None else False)

        submitted = time.monotonic()
        poison = cluster.submit(_spec(cluster, "digits", epochs=1, batch_size=BATCH, architecture=POISON))
        failed = cluster.wait_status(poison, ("succeeded", "failed", "cancelled"), timeout_s=240)
        failed_after_s = time.monotonic() - submitted
        stop.set()

        assert failed.status == "failed"
        assert failed.error.startswith(expected.reason() + "; training it needs ~"), failed.error
        assert "by estimate" in failed.error and "DESCENT_MAX_ATTEMPTS = 2" in failed.error
        assert "smaller architecture" in failed.error
        assert (failed.crashes, failed.attempt) == (2, 1)  # tried again in place, never re-sent
        assert worker.poll() is None, "the worker process died with its run"
        assert training_processes(worker.pid) == []
        if cgroup is not None:
            assert cgroup.oom_kills() >= 2
        assert max(Counter(metric_steps(cluster.sessions, poison)).values(), default=1) == 1
        printed = shown(cluster.settings, cluster.sessions, poison, capsys)
        assert "crashes:     2 (its training process died" in printed
        assert "error:\n  " + expected.reason() in printed

        epochs = 3
        submitted = time.monotonic()
        healthy = cluster.submit(_spec(cluster, "digits", epochs=epochs, batch_size=BATCH,
                                       architecture={"name": "mlp", "depth": 1, "width": 32}))
        _wait(lambda: cluster.experiment(healthy).status != "queued", 30, "the next run to start", interval_s=0.05)
        started_after_s = time.monotonic() - submitted
        done = cluster.wait_status(healthy, ("succeeded", "failed", "cancelled"), timeout_s=180)
        print(f"\npoison run: failed {failed_after_s:.1f} s after submission "
              f"({'the OOM killer in a 2.5 GiB cgroup' if cgroup else 'SIGKILL standing in for the kernel'}); "
              f"the next run started {started_after_s:.2f} s after its submission on the same worker")
        assert done.status == "succeeded", done.error
        assert done.worker_host == failed.worker_host
        assert started_after_s < 5.0
        steps_per_epoch = -(-len(builtin_split("digits").x_train) // BATCH)
        assert_every_step_once(cluster.sessions, healthy, steps_per_epoch, epochs)
