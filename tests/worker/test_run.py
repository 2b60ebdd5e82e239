"""``run_experiment`` against a real PostgreSQL with the real migrations: claim, train, metrics
written once per (name, step), final weights, duplicate deliveries, failures a user can act on,
cancel mid-run, and a run taken over from a dead worker resuming from its checkpoint."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
import torch
from sqlalchemy import select, update

from core.settings import Settings
from store.db import session_scope
from store.models import Experiment, Metric, utcnow
from store.repositories import experiments
from tests.services import scratch_database
from tests.worker.records import add_builtin_split, add_experiment, sessions_for
from tests.worker.splits import builtin_split, make_spec
from worker.architectures import build_model
from worker.data import prepare
from worker.engine import train
from worker.run import Runtime, run_experiment
from worker.sink import ListSink

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def database_url():
    with scratch_database() as url:
        yield url


@pytest.fixture
def runtime(database_url, tmp_path):
    settings = Settings(data_dir=tmp_path, database_url=database_url, stale_heartbeat_s=30, export_onnx=True)
    return Runtime(settings, sessions_for(database_url), host="test-host:1")


def _experiment(runtime, experiment_id) -> Experiment:
    with session_scope(runtime.sessions) as session:
        return experiments.get(session, experiment_id)


def _points(runtime, experiment_id) -> list[tuple[str, int, float | None]]:
    with session_scope(runtime.sessions) as session:
        rows = session.execute(
            select(Metric.name, Metric.step, Metric.value).where(Metric.experiment_id == experiment_id)
        ).all()
    return [tuple(r) for r in rows]


def _spec(runtime, dataset="wine", architecture=None, **training):
    split_id = add_builtin_split(runtime.sessions, dataset)
    spec = make_spec(builtin_split(dataset), architecture=architecture, **training)
    return spec.model_copy(update={"split_id": split_id})


def test_a_run_records_its_metrics_status_and_final_weights(runtime):
    spec = _spec(runtime, epochs=3, batch_size=32)
    experiment_id = add_experiment(runtime.sessions, spec)
    assert run_experiment(experiment_id, runtime) == "succeeded"

    experiment = _experiment(runtime, experiment_id)
    assert (experiment.status, experiment.attempt, experiment.progress, experiment.error) == ("succeeded", 1, 1.0, None)
    assert experiment.worker_host == "test-host:1" and experiment.device == "cpu"
    points = _points(runtime, experiment_id)
    steps = 3 * -(-len(builtin_split("wine").x_train) // 32)
    assert sorted(s for n, s, _ in points if n == "train/loss") == list(range(1, steps + 1))
    assert max(Counter((n, s) for n, s, _ in points).values()) == 1

    # the final weights reproduce the recorded test accuracy (an independent forward pass)
    weights = torch.load(runtime.settings.checkpoint_path(experiment_id, "final"), weights_only=True)
    model = build_model("mlp", {"depth": 1, "width": 16}, (13,), 3)
    model.load_state_dict(weights)
    data = prepare(builtin_split("wine"))
    model.eval()
    with torch.no_grad():
        accuracy = (model(data.test.x).argmax(-1) == data.test.y).double().mean().item()
    recorded = dict(((n, s), v) for n, s, v in points)[("test/accuracy", steps)]
    assert recorded == pytest.approx(accuracy)


def test_a_duplicate_delivery_does_nothing(runtime):
    experiment_id = add_experiment(runtime.sessions, _spec(runtime, dataset="iris"))
    assert run_experiment(experiment_id, runtime) == "succeeded"
    before = _experiment(runtime, experiment_id)
    assert run_experiment(experiment_id, runtime) == "skipped"
    after = _experiment(runtime, experiment_id)
    assert (after.attempt, after.finished_at, after.status) == (before.attempt, before.finished_at, "succeeded")


@pytest.mark.parametrize(
    ("solver", "expected"),
    [
        ({"name": "adam", "base_lr": 1e9}, r"diverged at step \d+ \(loss = (nan|inf)\); try a lower base_lr"),
        # a stored spec the catalog no longer accepts (written before a bound changed)
        ({"name": "adam", "base_lr": -1.0}, r"spec: solver\.adam\.base_lr: Input should be greater than or equal to 0.*"),
    ],
)
def test_a_failure_is_recorded_with_an_actionable_message(runtime, solver, expected):
    import re

    spec = _spec(runtime, epochs=5, architecture={"name": "mlp", "depth": 3, "width": 64})
    stored = spec.model_dump(mode="json") | {"solver": solver}
    experiment_id = add_experiment(runtime.sessions, spec, stored=stored)
    assert run_experiment(experiment_id, runtime) == "failed"
    experiment = _experiment(runtime, experiment_id)
    assert experiment.status == "failed" and re.fullmatch(expected, experiment.error), experiment.error


def test_cancel_mid_run_ends_it_as_cancelled(runtime):
    spec = _spec(runtime, dataset="digits", epochs=200, batch_size=8)
    experiment_id = add_experiment(runtime.sessions, spec)
    requested_at_step: list[int] = []

    def cancel_once_running():
        while True:
            experiment = _experiment(runtime, experiment_id)
            if experiment.status == "running" and experiment.step > 0:
                with session_scope(runtime.sessions) as session:
                    requested_at_step.append(experiment.step)
                    experiments.request_cancel(session, experiment_id)
                return
            time.sleep(0.02)

    canceller = threading.Thread(target=cancel_once_running)
    canceller.start()
    started = time.monotonic()
    assert run_experiment(experiment_id, runtime, cancel_poll_s=0.05) == "cancelled"
    canceller.join()
    experiment = _experiment(runtime, experiment_id)
    assert experiment.status == "cancelled" and time.monotonic() - started < 30
    last_step = max(s for n, s, _ in _points(runtime, experiment_id) if n == "train/loss")
    assert requested_at_step[0] <= last_step < 200 * 135


def _cancel_once_past_step(runtime, experiment_id, step: int) -> threading.Thread:
    def cancel():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _experiment(runtime, experiment_id).step > step:
                with session_scope(runtime.sessions) as session:
                    experiments.request_cancel(session, experiment_id)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=cancel)
    thread.start()
    return thread


_ENDINGS = {
    # how: (status, dataset, make_spec arguments); the stopped ones are long enough to stop mid-way
    "succeeded": ("succeeded", "wine", {"epochs": 3, "batch_size": 32}),
    "diverged": ("failed", "wine", {"epochs": 5, "batch_size": 16, "solver": {"name": "adam", "base_lr": 1e9},
                                    "architecture": {"name": "mlp", "depth": 3, "width": 64}}),
    "time_limit": ("failed", "digits", {"epochs": 200, "batch_size": 8, "max_minutes": 0.02}),
    "cancelled": ("cancelled", "digits", {"epochs": 200, "batch_size": 8}),
}


@pytest.mark.parametrize("how", list(_ENDINGS))
def test_a_finished_run_shows_the_steps_and_epochs_it_ran(runtime, how):
    """The row's step is the count of stored train/loss points and its epoch the count of val/loss
    points (one per completed epoch), not the last periodic heartbeat's; progress is step / total."""
    status, dataset, arguments = _ENDINGS[how]
    split_id = add_builtin_split(runtime.sessions, dataset)
    spec = make_spec(builtin_split(dataset), **arguments).model_copy(update={"split_id": split_id})
    experiment_id = add_experiment(runtime.sessions, spec)
    canceller = _cancel_once_past_step(runtime, experiment_id, 200) if how == "cancelled" else None
    assert run_experiment(experiment_id, runtime, cancel_poll_s=0.05) == status
    if canceller is not None:
        canceller.join()
    experiment = _experiment(runtime, experiment_id)
    points = _points(runtime, experiment_id)
    steps = len([s for n, s, _ in points if n == "train/loss"])
    epochs = len([s for n, s, _ in points if n == "val/loss"])
    assert steps > (200 if how == "cancelled" else 0)
    assert (experiment.status, experiment.step, experiment.epoch) == (status, steps, epochs)
    total = spec.training.epochs * -(-len(builtin_split(dataset).x_train) // spec.training.batch_size)
    assert experiment.progress == pytest.approx(1.0 if status == "succeeded" else steps / total)


def test_a_run_whose_worker_died_resumes_from_its_checkpoint(runtime):
    spec = _spec(runtime, epochs=4, batch_size=16)
    whole = train(spec, prepare(builtin_split("wine")), sink=ListSink())
    steps_per_epoch = whole.step // 4

    experiment_id = add_experiment(runtime.sessions, spec)
    # attempt 1 claims, trains into its third epoch and dies (no outcome, heartbeat goes stale)
    with session_scope(runtime.sessions) as session:
        assert experiments.claim(session, experiment_id, "dead-host:1", "cpu", 30).attempt == 1
    from worker.run import _write_points

    dying_sink = ListSink()
    train(spec, prepare(builtin_split("wine")), sink=dying_sink,
          checkpoint_path=runtime.settings.checkpoint_path(experiment_id, "last"),
          should_cancel=lambda p: p.step == 2 * steps_per_epoch + 5)
    _write_points(runtime.sessions, experiment_id, dying_sink.points)
    with session_scope(runtime.sessions) as session:
        session.execute(update(Experiment).where(Experiment.id == experiment_id)
                        .values(heartbeat_at=utcnow() - timedelta(seconds=60)))

    assert run_experiment(experiment_id, runtime) == "succeeded"
    experiment = _experiment(runtime, experiment_id)
    assert (experiment.status, experiment.attempt) == ("succeeded", 2)
    weights = torch.load(runtime.settings.checkpoint_path(experiment_id, "final"), weights_only=True)
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(weights[name], tensor), name
    points = _points(runtime, experiment_id)
    assert max(Counter((n, s) for n, s, _ in points).values()) == 1
    assert sorted(s for n, s, _ in points if n == "train/loss") == list(range(1, whole.step + 1))


def test_an_early_stopped_run_says_why_and_stores_its_best_model_beside_the_last(runtime):
    spec = _spec(runtime, "iris", epochs=60, batch_size=16,
                 early_stopping={"metric": "val/accuracy", "patience": 2})
    spec = spec.model_copy(update={"solver": spec.solver.model_copy(update={"base_lr": 0.05})})
    experiment_id = add_experiment(runtime.sessions, spec)
    assert run_experiment(experiment_id, runtime) == "succeeded"
    experiment = _experiment(runtime, experiment_id)
    accuracy = [v for n, _, v in sorted(_points(runtime, experiment_id), key=lambda p: p[1]) if n == "val/accuracy"]
    assert experiment.epoch == len(accuracy) < 60
    best_epoch = accuracy.index(max(accuracy)) + 1
    assert experiment.stop_reason.startswith(f"stopped early at epoch {experiment.epoch} of 60: val/accuracy")
    assert f"(best {max(accuracy):.6g} at epoch {best_epoch})" in experiment.stop_reason
    settings = runtime.settings
    for which in ("last", "best"):
        assert settings.model_path(experiment_id, "pt2", which).is_file()
        assert settings.model_path(experiment_id, "state_dict", which).is_file()
        assert settings.model_path(experiment_id, "onnx", which).is_file()
    # the best program scores the best epoch's val/accuracy on the raw validation features
    split = builtin_split("iris")
    program = torch.export.load(settings.model_path(experiment_id, "pt2", "best"))
    with torch.no_grad():
        predicted = program.module()(torch.as_tensor(split.x_val, dtype=torch.float32)).argmax(1).numpy()
    assert (predicted == split.y_val).mean() == pytest.approx(max(accuracy), abs=1e-12)


def test_a_range_test_run_records_its_lr_sweep_and_a_suggestion_and_stores_no_weights(runtime):
    from core.studies.range_test import lr_at

    bounds = {"min_lr": 1e-5, "max_lr": 10.0, "num_steps": 40}
    spec = _spec(runtime, epochs=3, batch_size=32, range_test=bounds)
    experiment_id = add_experiment(runtime.sessions, spec)
    assert run_experiment(experiment_id, runtime) == "succeeded"

    assert _experiment(runtime, experiment_id).status == "succeeded"
    points = _points(runtime, experiment_id)
    lrs = sorted((s, v) for n, s, v in points if n == "lr")
    assert [s for s, _ in lrs] == list(range(1, len(lrs) + 1)) and len(lrs) >= 10
    assert [v for _, v in lrs] == [lr_at(s - 1, 1e-5, 10.0, 40) for s, _ in lrs]
    assert sorted(s for n, s, _ in points if n == "train/loss") == [s for s, _ in lrs]
    [suggested] = [v for n, _, v in points if n == "range/suggested_lr"]
    assert 1e-5 <= suggested <= 10.0
    for name in ("final", "best", "last"):
        assert not runtime.settings.checkpoint_path(experiment_id, name).exists()
    assert not runtime.settings.model_path(experiment_id, "pt2", "last").exists()


def test_an_instance_may_turn_the_onnx_export_off(runtime):
    runtime.settings = runtime.settings.model_copy(update={"export_onnx": False})
    experiment_id = add_experiment(runtime.sessions, _spec(runtime, "iris", epochs=2, batch_size=32))
    assert run_experiment(experiment_id, runtime) == "succeeded"
    assert runtime.settings.model_path(experiment_id, "pt2").is_file()
    assert not runtime.settings.model_path(experiment_id, "onnx").exists()
