"""``compute_landscape`` on runs trained by the real engine (``run_experiment`` against a real
PostgreSQL): the centre's validation loss is the run's recorded last ``val/loss`` (the same
weights and the whole validation part, evaluated in eval mode; with which=best the best epoch's),
the grid has the asked shape,
a run that never moved its weights (lr 0) projects its start onto the centre at distance 0 (the
initial weights are rebuilt exactly), a linear model under MSE has an exactly quadratic loss
along any line (constant second differences), and runs without weights are refused."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select, update

from core.settings import Settings
from store.db import session_scope
from store.models import Experiment, Metric
from tests.services import scratch_database
from tests.worker.records import add_builtin_split, add_experiment, sessions_for
from tests.worker.splits import builtin_split, make_spec
from worker.lab.landscape import LandscapeRefused, compute_landscape
from worker.run import Runtime, run_experiment

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    with scratch_database() as url:
        settings = Settings(data_dir=tmp_path_factory.mktemp("data"), database_url=url, export_onnx=False)
        yield Runtime(settings, sessions_for(url), host="test-host:1")


def _trained(runtime, dataset="digits", **spec_fields) -> int:
    split_id = add_builtin_split(runtime.sessions, dataset)
    training = {"epochs": 2, "batch_size": 64} | spec_fields.pop("training", {})
    spec = make_spec(builtin_split(dataset), **spec_fields, **training).model_copy(update={"split_id": split_id})
    experiment_id = add_experiment(runtime.sessions, spec)
    assert run_experiment(experiment_id, runtime) == "succeeded"
    return experiment_id


def _last(runtime, experiment_id: int, name: str) -> float:
    with session_scope(runtime.sessions) as session:
        return session.execute(select(Metric.value).where(Metric.experiment_id == experiment_id, Metric.name == name)
                               .order_by(Metric.step.desc()).limit(1)).scalar_one()


def _job(experiment_id: int, **spec) -> dict:
    return {"id": 1, "experiment_id": experiment_id, "spec": spec}


@pytest.fixture(scope="module")
def digits_run(runtime) -> int:
    return _trained(runtime, architecture={"name": "mlp", "depth": 1, "width": 32})


def test_the_centre_is_the_runs_recorded_validation_loss_on_a_plane(runtime, digits_run):
    result = compute_landscape(_job(digits_run, dims=2, points=5, train_examples=200), runtime)
    assert result["axis"] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    n_val = len(builtin_split("digits").x_val)
    assert result["examples"] == {"train": 200, "val": n_val}
    for part in ("train", "val"):
        for metric in ("loss", "accuracy"):
            grid = np.asarray(result[part][metric], dtype=float)
            assert grid.shape == (5, 5)
            assert grid[2, 2] == result["centre"][part][metric]
    assert result["centre"]["val"]["loss"] == pytest.approx(_last(runtime, digits_run, "val/loss"), abs=1e-6)
    assert result["centre"]["val"]["accuracy"] == pytest.approx(_last(runtime, digits_run, "val/accuracy"))
    # a trained minimum: every edge of the plane is worse than its centre
    val = np.asarray(result["val"]["loss"])
    assert min(val[0].min(), val[-1].min(), val[:, 0].min(), val[:, -1].min()) > val[2, 2]
    assert result["end"] == {"coords": [0.0, 0.0]}
    assert len(result["start"]["coords"]) == 2 and 0 < result["start"]["left_out"] <= 1
    assert result["start"]["distance"] > 0


def test_the_same_spec_gives_the_same_landscape_and_another_seed_another(runtime, digits_run):
    spec = {"dims": 1, "points": 7, "train_examples": 100}
    first = compute_landscape(_job(digits_run, **spec), runtime)
    assert len(first["train"]["loss"]) == 7
    assert compute_landscape(_job(digits_run, **spec), runtime)["val"] == first["val"]
    assert compute_landscape(_job(digits_run, **spec, seed=1), runtime)["val"] != first["val"]


def test_a_run_that_never_moved_starts_at_its_centre(runtime):
    experiment_id = _trained(runtime, dataset="iris", solver={"name": "sgd", "base_lr": 0.0})
    result = compute_landscape(_job(experiment_id, dims=1, points=5), runtime)
    # the rebuilt initial weights are the stored ones exactly: the engine's seeding reproduced
    assert result["start"] == {"coords": [0.0], "left_out": 0.0, "distance": 0.0}


def test_a_linear_model_under_mse_is_a_parabola_along_a_line(runtime):
    experiment_id = _trained(runtime, dataset="diabetes", architecture={"name": "linear"})
    result = compute_landscape(_job(experiment_id, dims=1, points=9, span=2.0), runtime)
    # L(a) = mean((X(w + a d) + b - y)^2) is quadratic in a: its second differences are one constant > 0
    for part in ("train", "val"):
        second = np.diff(np.asarray(result[part]["loss"]), 2)
        assert second.min() > 0
        np.testing.assert_allclose(second, second.mean(), rtol=1e-4)
    assert result["centre"]["val"]["loss"] == pytest.approx(_last(runtime, experiment_id, "val/loss"), abs=1e-6)


def _best(runtime, experiment_id: int, name: str) -> float:
    with session_scope(runtime.sessions) as session:
        return min(session.scalars(select(Metric.value).where(Metric.experiment_id == experiment_id,
                                                              Metric.name == name)))


def test_the_best_weights_centre_on_the_best_epochs_validation_loss(runtime):
    # a high rate that overshoots: the best epoch is not the last
    experiment_id = _trained(runtime, solver={"name": "sgd", "base_lr": 0.9}, training={"epochs": 6})
    assert _best(runtime, experiment_id, "val/loss") < _last(runtime, experiment_id, "val/loss")
    best = compute_landscape(_job(experiment_id, dims=1, points=5, which="best"), runtime)
    assert best["centre"]["val"]["loss"] == pytest.approx(_best(runtime, experiment_id, "val/loss"), abs=1e-6)


def test_runs_without_weights_are_refused_with_what_to_do(runtime, digits_run):
    with pytest.raises(LandscapeRefused, match="no stored best weights"):
        runtime.settings.model_path(digits_run, "state_dict", "best").rename(
            runtime.settings.checkpoint_dir / "moved-best.pt")
        compute_landscape(_job(digits_run, which="best"), runtime)
    experiment_id = add_experiment(runtime.sessions, make_spec(builtin_split("iris")).model_copy(
        update={"split_id": add_builtin_split(runtime.sessions, "iris")}))
    with pytest.raises(LandscapeRefused, match=r"is queued: a landscape needs a run that succeeded"):
        compute_landscape(_job(experiment_id), runtime)
    with session_scope(runtime.sessions) as session:
        session.execute(update(Experiment).where(Experiment.id == experiment_id).values(status="failed"))
    with pytest.raises(LandscapeRefused, match="is failed"):
        compute_landscape(_job(experiment_id), runtime)
