"""Runtime budgets through ``run_experiment`` against a real PostgreSQL: a run past its wall-clock
limit fails saying why with its metrics so far stored once, and a cancel is honoured within a
few seconds even during one long optimizer step, whether the step evaluates its closure often
(L-BFGS, random search) or loops without it (Hessian-free's conjugate gradient).

Each long-step spec below is one full-batch step in one epoch, so a run whose step finished
would record a train/loss point; measured uninterrupted on the 2-core development machine with
one torch thread: L-BFGS ``max_iter=1000`` about 14 s, random search with 1000 candidates about
8 s, Hessian-free ``cg_max_iter=1000`` about 16 s: each well past the 3 s the cancel gets."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import select

import worker.run as worker_run
from core.settings import Settings
from store.db import session_scope
from store.models import Metric
from store.repositories import experiments
from tests.services import scratch_database
from tests.worker.records import add_builtin_split, add_experiment, sessions_for
from tests.worker.splits import builtin_split, make_spec
from worker.data import prepare
from worker.engine import train
from worker.run import Runtime, run_experiment
from worker.sink import ListSink

pytestmark = pytest.mark.integration

# "within about a second" on a loaded 2-core machine
BOUND_S = 3.0

LONG_STEPS = {
    # the closure path: every iteration and candidate evaluates the loss
    "lbfgs": ({"name": "lbfgs", "base_lr": 1.0, "max_iter": 1000, "max_eval": 2000, "tolerance_grad": 0.0,
               "tolerance_change": 0.0}, {"name": "mlp", "depth": 2, "width": 64}),
    "randomsearch": ({"name": "randomsearch", "base_lr": 1.0, "n_samples": 1000}, {"name": "mlp", "depth": 2, "width": 64}),
    # the asynchronous path: 1000 Hessian-vector products between two closure evaluations
    "hessianfree": ({"name": "hessianfree", "base_lr": 1.0, "cg_max_iter": 1000, "cg_tol": 0.0, "damping": 1.0},
                    {"name": "mlp", "depth": 1, "width": 512, "activation": "tanh"}),
}


@pytest.fixture(scope="module")
def database_url():
    with scratch_database() as url:
        yield url


def _runtime(database_url, tmp_path, **settings) -> Runtime:
    settings = Settings(data_dir=tmp_path, database_url=database_url, stale_heartbeat_s=30, **settings)
    return Runtime(settings, sessions_for(database_url), host="test-host:1")


@pytest.fixture
def runtime(database_url, tmp_path):
    return _runtime(database_url, tmp_path)


@pytest.fixture(scope="module", autouse=True)
def _warm_engine():
    """Train once before the timed runs: a cold first run spends seconds loading what every
    later one reuses, which a 3 s limit would spend before its first step."""
    split = builtin_split("digits")
    train(make_spec(split), prepare(split), sink=ListSink())


def _experiment(runtime, experiment_id):
    with session_scope(runtime.sessions) as session:
        return experiments.get(session, experiment_id)


def _points(runtime, experiment_id) -> list[tuple[str, int]]:
    with session_scope(runtime.sessions) as session:
        rows = session.execute(select(Metric.name, Metric.step).where(Metric.experiment_id == experiment_id)).all()
    return [tuple(r) for r in rows]


def _add(runtime, dataset="digits", **spec_args) -> int:
    split_id = add_builtin_split(runtime.sessions, dataset)
    spec = make_spec(builtin_split(dataset), **spec_args).model_copy(update={"split_id": split_id})
    return add_experiment(runtime.sessions, spec)


@pytest.mark.parametrize(
    ("max_minutes", "instance_minutes", "expected"),
    [
        (0.05, 1440, r"stopped after 0\.\d\d minutes: the run's wall-clock limit \(training\.max_minutes = 0\.05, "
                     r"instance maximum DESCENT_MAX_RUN_MINUTES = 1440\); raise training\.max_minutes or shorten the run"),
        (None, 0.05, r"stopped after 0\.\d\d minutes: the instance's wall-clock limit \(DESCENT_MAX_RUN_MINUTES = 0\.05; "
                     r"training\.max_minutes not set\); shorten the run .* ask the operator to raise DESCENT_MAX_RUN_MINUTES"),
    ],
    ids=["training.max_minutes", "instance maximum"],
)
def test_a_run_past_its_wall_clock_limit_fails_saying_why_and_keeps_its_metrics(
        database_url, tmp_path, max_minutes, instance_minutes, expected):
    runtime = _runtime(database_url, tmp_path, max_run_minutes=instance_minutes)
    # 200 epochs of 135 steps: minutes of training, stopped after 3 s
    experiment_id = _add(runtime, epochs=200, batch_size=8, max_minutes=max_minutes)
    began = time.monotonic()
    assert run_experiment(experiment_id, runtime) == "failed"
    took = time.monotonic() - began

    experiment = _experiment(runtime, experiment_id)
    assert experiment.status == "failed" and re.fullmatch(expected, experiment.error), experiment.error
    assert 0.05 * 60 <= took < 0.05 * 60 + 15, took  # 15 s: loading the split, then the limit's check
    points = _points(runtime, experiment_id)
    assert max(Counter(points).values()) == 1
    steps = sorted(s for n, s in points if n == "train/loss")
    assert steps == list(range(1, len(steps) + 1)) and 0 < len(steps) < 200 * 135
    assert experiment.step <= steps[-1]  # the heartbeat reported steps that were done


def _spy_on_step_start(monkeypatch) -> threading.Event:
    """An event set once the engine has asked whether to cancel before its first step (so the
    step runs from then on), for a canceller to wait on."""
    asked = threading.Event()
    real_train = worker_run.train

    def train(*args, should_cancel, **kwargs):
        def should_cancel_spied(progress):
            answer = should_cancel(progress)
            asked.set()
            return answer

        return real_train(*args, should_cancel=should_cancel_spied, **kwargs)

    monkeypatch.setattr(worker_run, "train", train)
    return asked


@pytest.mark.parametrize("solver", sorted(LONG_STEPS))
def test_a_cancel_during_one_long_step_ends_the_run_within_seconds(runtime, monkeypatch, solver):
    body, architecture = LONG_STEPS[solver]
    experiment_id = _add(runtime, solver=body, architecture=architecture, epochs=1, batch_size=None)
    step_started = _spy_on_step_start(monkeypatch)
    requested: list[float] = []

    def cancel_mid_step():
        if step_started.wait(60):
            time.sleep(0.5)
            with session_scope(runtime.sessions) as session:
                experiments.request_cancel(session, experiment_id)
            requested.append(time.monotonic())

    canceller = threading.Thread(target=cancel_mid_step)
    canceller.start()
    status = run_experiment(experiment_id, runtime)
    ended = time.monotonic()
    canceller.join()

    experiment = _experiment(runtime, experiment_id)
    assert status == "cancelled" and experiment.status == "cancelled" and experiment.error is None
    assert ended - requested[0] < BOUND_S, ended - requested[0]
    # the only step was cut short: none finished, none recorded, the heartbeat says so too
    assert [s for n, s in _points(runtime, experiment_id) if n == "train/loss"] == []
    assert (experiment.step, experiment.progress) == (0, 0.0)
