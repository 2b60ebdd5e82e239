"""A study's trial asking its pruner, through ``run_experiment`` on a real PostgreSQL: three
finished trials scored well at every epoch, a fourth trained with a hopeless learning rate.  The
median rule (a trial whose best value so far is worse than the median of the finished trials'
values at the same epoch stops) is applied by hand to the fourth trial's recorded values, and the
run must stop at the first epoch the rule names, ``pruned`` and saying why; a promising trial
trains to the end; an experiment outside a study never asks."""

from __future__ import annotations

import statistics

import pytest
from sqlalchemy import select

from core.settings import Settings
from core.studies import StudySpec
from store.db import session_scope
from store.models import Metric
from store.repositories import experiments, metrics, studies
from tests.services import scratch_database
from tests.worker.records import add_builtin_split, sessions_for
from tests.worker.splits import builtin_split, make_spec
from worker.run import Runtime, run_experiment

pytestmark = pytest.mark.integration

EPOCHS = 6
FINISHED_SCORES = (0.80, 0.85, 0.90)  # val/accuracy of the finished trials at every epoch


@pytest.fixture(scope="module")
def database_url():
    with scratch_database() as url:
        yield url


@pytest.fixture
def runtime(database_url, tmp_path):
    settings = Settings(data_dir=tmp_path, database_url=database_url, stale_heartbeat_s=30)
    return Runtime(settings, sessions_for(database_url), host="test-host:1")


def _study_with_finished_trials(runtime, pruner: dict) -> tuple[int, dict, int]:
    """A study (median pruner) with three finished trials; returns (study id, base, split id)."""
    split_id = add_builtin_split(runtime.sessions, "iris")
    base = make_spec(builtin_split("iris"), epochs=EPOCHS, batch_size=16).model_copy(update={"split_id": split_id})
    base_json = base.model_dump(mode="json")
    spec = StudySpec(name="s", base=base_json, space={"solver.base_lr": {"type": "float", "low": 1e-7, "high": 1.0,
                                                                         "log": True}},
                     objective={"metric": "val/accuracy"}, strategy="random", pruner=pruner)
    with session_scope(runtime.sessions) as session:
        study = studies.create(session, project_id=1, created_by=None, name="s", kind="search",
                               spec=spec.model_dump(mode="json"), split_id=split_id)
        for number, score in enumerate(FINISHED_SCORES):
            trial = experiments.create(session, name=f"t{number}", spec=base_json, solver="adam", tags=[],
                                       split_id=split_id, queue="cpu", study_id=study.id, trial_number=number,
                                       trial_params={"solver.base_lr": 0.01})
            trial.status = "succeeded"
            session.flush()
            metrics.add_points(session, trial.id, [("val/accuracy", e * 10, e, score, 1.0) for e in range(1, 7)])
        return study.id, base_json, split_id


def _trial(runtime, study_id: int, base: dict, split_id: int, lr: float) -> int:
    spec = {**base, "solver": {**base["solver"], "base_lr": lr}}
    with session_scope(runtime.sessions) as session:
        return experiments.create(session, name="t3", spec=spec, solver="adam", tags=[], split_id=split_id,
                                  queue="cpu", study_id=study_id, trial_number=3,
                                  trial_params={"solver.base_lr": lr}).id


def _accuracy_by_epoch(runtime, experiment_id: int) -> list[float]:
    with session_scope(runtime.sessions) as session:
        return list(session.scalars(select(Metric.value).where(Metric.experiment_id == experiment_id,
                                                               Metric.name == "val/accuracy").order_by(Metric.step)))


def _median_rule_epoch(values: list[float], n_warmup: int = 0) -> int | None:
    """The first epoch at which the median rule stops a trial with these values (maximising)."""
    median = statistics.median(FINISHED_SCORES)
    best = float("-inf")
    for epoch, value in enumerate(values, start=1):
        best = max(best, value)
        if epoch >= n_warmup and best < median:  # Optuna: no pruning at steps below n_warmup_steps
            return epoch
    return None


def test_a_hopeless_trial_is_pruned_at_the_epoch_the_median_rule_names(runtime):
    study_id, base, split_id = _study_with_finished_trials(runtime, {"name": "median", "n_startup_trials": 3,
                                                                     "n_warmup_steps": 3})
    trial = _trial(runtime, study_id, base, split_id, lr=1e-7)  # learns nothing in six epochs
    assert run_experiment(trial, runtime) == "pruned"
    recorded = _accuracy_by_epoch(runtime, trial)
    # Optuna's median pruner counts epochs as steps and prunes once past n_warmup_steps
    expected = _median_rule_epoch(recorded + [recorded[-1]] * (EPOCHS - len(recorded)), n_warmup=3)
    assert expected is not None and len(recorded) == expected == 3
    with session_scope(runtime.sessions) as session:
        row = experiments.get(session, trial)
        assert (row.status, row.epoch) == ("pruned", expected)
        assert row.stop_reason.startswith(f"pruned after epoch {expected} by study {study_id}'s median pruner: "
                                          f"val/accuracy")
        steps = session.scalar(select(Metric.step).where(Metric.experiment_id == trial, Metric.name == "train/loss")
                               .order_by(Metric.step.desc()).limit(1))
    assert steps == expected * -(-len(builtin_split("iris").x_train) // 16), "it stopped at that epoch's end"


def test_a_promising_trial_trains_every_epoch(runtime):
    study_id, base, split_id = _study_with_finished_trials(runtime, {"name": "median", "n_startup_trials": 3})
    trial = _trial(runtime, study_id, base, split_id, lr=0.05)
    assert run_experiment(trial, runtime) == "succeeded"
    recorded = _accuracy_by_epoch(runtime, trial)
    assert len(recorded) == EPOCHS and _median_rule_epoch(recorded) is None


def test_no_pruner_no_question(runtime):
    study_id, base, split_id = _study_with_finished_trials(runtime, {"name": "none"})
    trial = _trial(runtime, study_id, base, split_id, lr=1e-7)
    assert run_experiment(trial, runtime) == "succeeded"
    assert len(_accuracy_by_epoch(runtime, trial)) == EPOCHS
