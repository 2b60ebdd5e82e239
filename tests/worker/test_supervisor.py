"""``supervise`` against a real PostgreSQL with the real migrations and real training processes:
the run trains in a child process; a child killed by SIGKILL (standing in for the kernel's OOM
killer) is counted and trained again from the checkpoint, and at ``max_attempts`` the run fails
with the reason; the supervising process lives on; a cancel or a time limit that a stuck
(SIGSTOPped) child cannot honour ends it for certain; every step's metrics are stored once."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core.settings import Settings
from store.db import session_scope
from store.models import Experiment
from store.repositories import experiments
from tests.services import scratch_database
from tests.worker.processes import spare_processes, training_processes, wait_for_training_process
from tests.worker.records import (
    add_builtin_split,
    add_experiment,
    assert_every_step_once,
    metric_steps,
    sessions_for,
)
from tests.worker.splits import builtin_split, make_spec
from worker import oom
from worker.export import read_metadata
from worker.supervisor import Death, supervise

pytestmark = pytest.mark.integration

BATCH = 16
STEPS_PER_EPOCH = -(-len(builtin_split("wine").x_train) // BATCH)


@pytest.fixture(scope="module")
def database_url():
    with scratch_database() as url:
        yield url


@pytest.fixture
def runtime(database_url, tmp_path):
    from worker.run import Runtime

    settings = Settings(data_dir=tmp_path, database_url=database_url, stale_heartbeat_s=30)
    return Runtime(settings, sessions_for(database_url), host=f"test-host:{os.getpid()}")


@pytest.fixture
def pool():
    with ThreadPoolExecutor(1) as executor:
        yield executor


def _queued(runtime, epochs: int, **training) -> int:
    split_id = add_builtin_split(runtime.sessions, "wine")
    spec = make_spec(builtin_split("wine"), epochs=epochs, batch_size=BATCH, **training)
    return add_experiment(runtime.sessions, spec.model_copy(update={"split_id": split_id}))


def _experiment(runtime, experiment_id) -> Experiment:
    with session_scope(runtime.sessions) as session:
        return experiments.get(session, experiment_id)


def _wait(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def test_the_run_trains_in_a_child_process_and_the_supervisor_records_its_outcome(runtime, pool):
    experiment_id = _queued(runtime, epochs=3)
    future = pool.submit(supervise, experiment_id, runtime)
    child = wait_for_training_process(os.getpid())
    assert child != os.getpid()
    assert future.result(timeout=180) == "succeeded"
    assert training_processes(os.getpid()) == []
    assert len(spare_processes(os.getpid())) == 1  # the next run's, its imports done
    done = _experiment(runtime, experiment_id)
    assert (done.status, done.attempt, done.crashes, done.error) == ("succeeded", 1, 0, None)
    assert done.worker_host == runtime.host
    assert runtime.settings.checkpoint_path(experiment_id, "final").exists()
    meta = read_metadata(runtime.settings.model_path(experiment_id))  # the model exported with its preprocessing
    assert (meta["experiment_id"], meta["task"], meta["labels"]) == (experiment_id, "classification", ["0", "1", "2"])
    assert_every_step_once(runtime.sessions, experiment_id, STEPS_PER_EPOCH, 3)
    assert supervise(experiment_id, runtime) == "skipped"  # a redelivered message finds nothing to claim


def test_a_child_killed_every_time_fails_the_run_after_max_attempts_with_the_memory_reason(runtime, pool):
    experiment_id = _queued(runtime, epochs=50)
    future = pool.submit(supervise, experiment_id, runtime)
    killed: list[int] = []
    for _ in range(runtime.settings.max_attempts):
        child = wait_for_training_process(os.getpid(), exclude=tuple(killed))
        _wait(lambda: _experiment(runtime, experiment_id).step > 0, 120, "the child to train")
        os.kill(child, signal.SIGKILL)
        killed.append(child)
    assert future.result(timeout=60) == "failed"
    failed = _experiment(runtime, experiment_id)
    assert failed.crashes == runtime.settings.max_attempts == 2
    assert failed.attempt == 1  # trained again in place, not re-sent
    # the test, not the OOM killer, killed it, and where the cgroup's counter is readable the reason says so
    told = Death(-signal.SIGKILL, None if oom.oom_kills() is None else False).reason()
    assert failed.error.startswith(told + "; training it needs ~")
    assert "by estimate" in failed.error and "weights+gradients" in failed.error
    assert "2 times; DESCENT_MAX_ATTEMPTS = 2" in failed.error
    assert "smaller architecture" in failed.error
    assert training_processes(os.getpid()) == []
    assert max(Counter(metric_steps(runtime.sessions, experiment_id)).values(), default=1) == 1  # stored once


def test_a_child_killed_once_trains_again_from_its_checkpoint_and_every_step_is_stored_once(runtime, pool, caplog):
    epochs = 8
    experiment_id = _queued(runtime, epochs=epochs)
    caplog.set_level(logging.INFO, logger="worker.supervisor")
    future = pool.submit(supervise, experiment_id, runtime)
    first = wait_for_training_process(os.getpid())
    _wait(lambda: _experiment(runtime, experiment_id).epoch >= 2, 120, "two epochs (a checkpoint)")
    os.kill(first, signal.SIGKILL)
    assert future.result(timeout=180) == "succeeded"
    started = [r.getMessage() for r in caplog.records if "training in process" in r.getMessage()]
    assert started == [f"experiment {experiment_id}: training in process {first}",
                       f"experiment {experiment_id}: training in process {started[1].rsplit(' ', 1)[1]}"]
    assert started[1] != started[0]
    done = _experiment(runtime, experiment_id)
    assert (done.status, done.attempt, done.crashes) == ("succeeded", 1, 1)
    assert done.warning is None  # the restart's note is cleared once training went on
    assert_every_step_once(runtime.sessions, experiment_id, STEPS_PER_EPOCH, epochs)


def test_a_stuck_child_is_killed_for_certain_on_cancel(runtime, pool):
    experiment_id = _queued(runtime, epochs=500)
    future = pool.submit(supervise, experiment_id, runtime, kill_grace_s=1.0)
    child = wait_for_training_process(os.getpid())
    _wait(lambda: _experiment(runtime, experiment_id).step > 0, 120, "the child to train")
    os.kill(child, signal.SIGSTOP)  # it can honour nothing now
    with session_scope(runtime.sessions) as session:
        experiments.request_cancel(session, experiment_id)
    asked = time.monotonic()
    assert future.result(timeout=30) == "cancelled"
    took = time.monotonic() - asked
    assert took < 1.0 + 3.0, f"cancel took {took:.1f} s"
    done = _experiment(runtime, experiment_id)
    assert (done.status, done.crashes, done.error) == ("cancelled", 0, None)
    assert not Path(f"/proc/{child}").exists() or child not in training_processes(os.getpid())


def test_a_stuck_child_is_killed_for_certain_at_the_time_limit(runtime, pool):
    experiment_id = _queued(runtime, epochs=500, max_minutes=0.1)
    future = pool.submit(supervise, experiment_id, runtime, kill_grace_s=1.0)
    child = wait_for_training_process(os.getpid())
    os.kill(child, signal.SIGSTOP)  # stuck from the start: only the supervisor can end it
    assert future.result(timeout=60) == "failed"
    done = _experiment(runtime, experiment_id)
    assert done.error.startswith("stopped after ") and "training.max_minutes = 0.1" in done.error
    assert done.crashes == 0


def test_a_child_that_crashes_in_native_code_fails_the_run_with_the_signal(runtime, pool):
    runtime.settings = runtime.settings.model_copy(update={"max_attempts": 1})
    experiment_id = _queued(runtime, epochs=500)
    future = pool.submit(supervise, experiment_id, runtime)
    child = wait_for_training_process(os.getpid())
    _wait(lambda: _experiment(runtime, experiment_id).step > 0, 120, "the child to train")
    os.kill(child, signal.SIGSEGV)
    assert future.result(timeout=60) == "failed"
    done = _experiment(runtime, experiment_id)
    assert done.error.startswith("the training process died of SIGSEGV (a crash in native code) (once; "
                                 "DESCENT_MAX_ATTEMPTS = 1")
    assert "worker's log" in done.error and "memory" not in done.error


@pytest.mark.parametrize(("returncode", "oom_killed", "says", "memory"), [
    (-signal.SIGKILL, True, "killed by the operating system because it ran out of memory", True),
    (-signal.SIGKILL, None, "killed by the operating system (SIGKILL), most likely because it ran out of memory", True),
    (-signal.SIGKILL, False, "killed (SIGKILL), not by its memory cgroup's OOM killer", True),
    (-signal.SIGSEGV, None, "died of SIGSEGV (a crash in native code)", False),
    (-signal.SIGTERM, None, "died of SIGTERM", False),
    (1, None, "exited with status 1 without reporting an outcome", False),
])
def test_how_a_death_is_told(returncode, oom_killed, says, memory):
    death = Death(returncode, oom_killed)
    assert death.memory is memory
    assert says in death.reason("~1 GiB")
    assert ("training it needs ~1 GiB by estimate" in death.reason("~1 GiB")) is memory
    assert ("smaller architecture" in death.advice()) is memory


@pytest.mark.parametrize(("proc_cgroup", "expected"), [
    ("4:memory:/pod/a\n0::/\n", ["memory/pod/a/memory.oom_control", "memory.events", "unified/memory.events"]),
    ("0::/user.slice/x\n", ["user.slice/x/memory.events", "unified/user.slice/x/memory.events"]),
    ("5:cpu,memory:/b\n", ["memory/b/memory.oom_control"]),
])
def test_the_oom_counter_is_found_for_cgroup_v1_and_v2(proc_cgroup, expected, tmp_path):
    assert oom.counter_files(proc_cgroup, tmp_path) == [tmp_path / e for e in expected]


def test_the_oom_counter_is_read_from_the_kernels_files(tmp_path):
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 2\noom 1\noom_kill 7\n")
    assert oom._counter(tmp_path / "memory.oom_control") == 3
    assert oom._counter(tmp_path / "memory.events") == 7
    assert oom._counter(tmp_path / "missing") is None
