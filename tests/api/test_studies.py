"""``/studies`` on real databases with the controller's passes driven by hand: the trials a grid
or random study makes are exactly the ones its space defines (conditional spaces too), finished
trials make room for new ones until the budget is spent, bad studies are refused naming the
field, and cancel or the wall clock stop a study with its live trials.  Trials are finished by
writing their status and metrics as a worker would."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import update

from api.studies import controller
from core.spec import ExperimentSpec
from core.studies import StudySpec, apply, enumerate_grid
from store.models import Experiment, Study, utcnow
from store.repositories import metrics

API = "/api/v1"


def _base(split_id: int, **training) -> dict:
    return {"name": "base", "split_id": split_id, "architecture": {"name": "mlp", "width": 8},
            "solver": {"name": "adam", "base_lr": 0.01}, "training": {"epochs": 3, "batch_size": 16, **training}}


CONDITIONAL = {
    "solver.name": {"type": "categorical", "values": ["adam", "sgd"], "when": {
        "adam": {"solver.base_lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True, "points": 2}},
        "sgd": {"solver.base_lr": {"type": "float", "low": 1e-2, "high": 1.0, "log": True, "points": 3},
                "solver.momentum": {"type": "categorical", "values": [0.0, 0.9]}},
    }},
}


def _key(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


def _finish(session_factory, experiment_id: int, values: list[float], status: str = "succeeded") -> None:
    """What a worker leaves: the objective per epoch, then the outcome."""
    with session_factory() as s:
        metrics.add_points(s, experiment_id, [("val/accuracy", 10 * e, e, v, 1000.0 + e)
                                              for e, v in enumerate(values, start=1)])
        s.execute(update(Experiment).where(Experiment.id == experiment_id)
                  .values(status=status, finished_at=utcnow(), epoch=len(values)))
        s.commit()


def _score(params: dict) -> float:
    """A made-up objective with one clear winner: sgd, momentum 0.9, the largest learning rate."""
    return round(0.5 + 0.2 * (params.get("solver.momentum") or 0) + 0.1 * params["solver.base_lr"], 9)


def _run_to_the_end(client, session_factory, settings, enqueued, study_id: int, limit: int = 50) -> dict:
    for _ in range(limit):
        study = client.get(f"{API}/studies/{study_id}").json()
        if study["status"] != "running":
            return study
        live = [t for t in study["trials"] if t["status"] in ("queued", "running")]
        assert len(live) <= study["spec"]["budget"]["parallel"]
        for trial in live:
            _finish(session_factory, trial["experiment_id"], [0.3, _score(trial["params"])])
        controller.advance_all(session_factory, settings, enqueued)
    raise AssertionError("the study did not end")


def test_a_grid_study_runs_exactly_its_conditional_grid(client, session_factory, settings, enqueued, iris_split):
    body = {"name": "grid", "base": _base(iris_split["id"]), "space": CONDITIONAL,
            "objective": {"metric": "val/accuracy"}, "strategy": "grid", "budget": {"parallel": 3}}
    created = client.post(f"{API}/studies", json=body)
    assert created.status_code == 201, created.text
    study = created.json()
    assert study["status"] == "running" and study["max_trials"] == 2 + 3 * 2
    assert [t["number"] for t in study["trials"]] == [0, 1, 2] and len(enqueued.sent) == 3

    done = _run_to_the_end(client, session_factory, settings, enqueued, study["id"])
    assert done["status"] == "done" and done["finished_at"] is not None
    grid = enumerate_grid(StudySpec.model_validate(body).space)
    made = [t["params"] for t in done["trials"]]
    assert sorted(map(_key, made)) == sorted(map(_key, grid)) and len(made) == len(grid) == 8
    assert [t["number"] for t in done["trials"]] == list(range(8))
    assert {e for e, _ in enqueued.sent} == {t["experiment_id"] for t in done["trials"]}
    # each trial trains the base with its parameters set
    for trial in done["trials"]:
        stored = client.get(f"{API}/experiments/{trial['experiment_id']}").json()
        assert stored["study_id"] == done["id"] and stored["trial_number"] == trial["number"]
        expected = ExperimentSpec.model_validate(apply(body["base"], trial["params"]))
        assert stored["spec"]["solver"]["name"] == expected.solver.name
        assert stored["spec"]["solver"]["base_lr"] == expected.solver.base_lr
        assert f"study-{done['id']}" in stored["tags"]
    winner = max(made, key=_score)
    assert done["best"]["params"] == winner and done["best"]["value"] == _score(winner)
    assert done["counts"] == {"succeeded": 8}
    assert done["importance"] and abs(sum(done["importance"].values()) - 1) < 1e-6


def test_the_tournament_is_solvers_times_learning_rates(client, session_factory, settings, enqueued, iris_split):
    body = {"base": _base(iris_split["id"]), "solvers": ["adam", "sgd", "rmsprop"], "lr_low": 1e-3, "lr_high": 1e-1,
            "points": 3, "metric": "val/accuracy", "parallel": 4}
    study = client.post(f"{API}/studies/tournament", json=body).json()
    assert study["kind"] == "tournament" and study["max_trials"] == 9
    assert study["spec"]["pruner"]["name"] == "asha" and study["spec"]["strategy"] == "grid"
    assert study["spec"]["pruner"]["group_by"] is None
    done = _run_to_the_end(client, session_factory, settings, enqueued, study["id"])
    pairs = sorted((t["params"]["solver.name"], t["params"]["solver.base_lr"]) for t in done["trials"])
    lrs = [1e-3, 1e-2, 1e-1]
    assert [s for s, _ in pairs] == sorted(["adam", "sgd", "rmsprop"] * 3)
    for solver in ("adam", "sgd", "rmsprop"):
        assert [lr for s, lr in pairs if s == solver] == pytest.approx(lrs, rel=1e-12)


def test_a_random_study_stops_at_its_budget_within_its_bounds(client, session_factory, settings, enqueued,
                                                                iris_split):
    space = {"solver.base_lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
             "architecture.width": {"type": "int", "low": 4, "high": 32}}
    body = {"name": "random", "base": _base(iris_split["id"]), "space": space,
            "objective": {"metric": "val/accuracy"}, "strategy": "random", "budget": {"max_trials": 5, "parallel": 2},
            "seed": 7}
    study = client.post(f"{API}/studies", json=body).json()
    done = _run_to_the_end(client, session_factory, settings, enqueued, study["id"])
    assert done["status"] == "done" and len(done["trials"]) == 5
    for trial in done["trials"]:
        assert 1e-4 <= trial["params"]["solver.base_lr"] <= 1e-1 and 4 <= trial["params"]["architecture.width"] <= 32
        spec = client.get(f"{API}/experiments/{trial['experiment_id']}").json()["spec"]
        assert spec["architecture"]["width"] == trial["params"]["architecture.width"]


@pytest.mark.parametrize(("change", "loc", "words"), [
    ({"objective": {"metric": "val/acuracy"}}, ["body", "objective", "metric"], "did you mean val/accuracy"),
    ({"base": {"name": "b", "split_id": 1, "architecture": {"name": "mlp"}, "solver": {"name": "adma"}}},
     ["body", "base", "solver"], "adam"),
    ({"space": {"solver.bogus": {"type": "categorical", "values": [1, 2]}}}, ["body", "space"], "bogus"),
    ({"space": {"solver.base_lr": {"type": "float", "low": 0.1, "high": 0.01, "points": 2}}},
     ["body", "space", "solver.base_lr"], "low"),
    ({"space": {"solver.base_lr": {"type": "float", "low": 0.01, "high": 0.1}}}, ["body"], "points"),
])
def test_a_bad_study_is_refused_naming_the_field(client, iris_split, change, loc, words):
    body = {"name": "bad", "base": _base(iris_split["id"]),
            "space": {"solver.base_lr": {"type": "float", "low": 0.01, "high": 0.1, "points": 2}},
            "objective": {"metric": "val/accuracy"}, "strategy": "grid", **change}
    if "base" in change:
        body["base"]["split_id"] = iris_split["id"]
    r = client.post(f"{API}/studies", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(d["loc"][:len(loc)] == loc and words in json.dumps(d) for d in detail), detail
    assert client.get(f"{API}/studies").json()["total"] == 0, "nothing stored"


def test_a_trial_whose_spec_cannot_run_fails_and_the_study_moves_on(client, session_factory, settings, enqueued,
                                                                      iris_split):
    # width 0 is refused by the architecture: TPE proposes it, the trial is stored failed saying why
    space = {"architecture.width": {"type": "int", "low": 0, "high": 1}}
    body = {"name": "tpe", "base": _base(iris_split["id"]), "space": space, "objective": {"metric": "val/accuracy"},
            "strategy": "random", "budget": {"max_trials": 6, "parallel": 6}}
    study = client.post(f"{API}/studies", json=body).json()
    failed = [t for t in study["trials"] if t["params"]["architecture.width"] == 0]
    assert failed and all(t["status"] == "failed" for t in failed)
    error = client.get(f"{API}/experiments/{failed[0]['experiment_id']}").json()["error"]
    assert error.startswith(f"trial {failed[0]['number']} (width=0) cannot run:") and "width" in error
    assert {e for e, _ in enqueued.sent} == {t["experiment_id"] for t in study["trials"] if t["status"] == "queued"}


def test_cancel_stops_the_study_and_its_live_trials(client, session_factory, settings, enqueued, iris_split):
    body = {"name": "c", "base": _base(iris_split["id"]), "space": CONDITIONAL, "objective": {"metric": "val/loss"},
            "strategy": "grid", "budget": {"parallel": 2}}
    study = client.post(f"{API}/studies", json=body).json()
    first = study["trials"][0]["experiment_id"]
    _finish(session_factory, first, [0.4])
    r = client.post(f"{API}/studies/{study['id']}/cancel")
    assert r.status_code == 200
    stopped = r.json()
    assert stopped["status"] == "stopped" and "cancelled by" in stopped["note"]
    assert [t["status"] for t in stopped["trials"]] == ["succeeded", "cancelled"]
    controller.advance_all(session_factory, settings, enqueued)
    assert len(client.get(f"{API}/studies/{study['id']}").json()["trials"]) == 2, "no trial after the cancel"
    assert client.post(f"{API}/studies/{study['id']}/cancel").status_code == 409


def test_past_its_wall_clock_a_study_stops_and_cancels_its_trials(client, session_factory, settings, enqueued,
                                                                 iris_split):
    body = {"name": "w", "base": _base(iris_split["id"]), "space": CONDITIONAL, "objective": {"metric": "val/loss"},
            "strategy": "grid", "budget": {"parallel": 2, "max_minutes": 1}}
    study = client.post(f"{API}/studies", json=body).json()
    with session_factory() as s:
        s.execute(update(Study).where(Study.id == study["id"]).values(created_at=utcnow() - timedelta(minutes=2)))
        s.commit()
    controller.advance_all(session_factory, settings, enqueued)
    stopped = client.get(f"{API}/studies/{study['id']}").json()
    assert stopped["status"] == "stopped" and "wall-clock limit of 1 minutes" in stopped["note"]
    assert {t["status"] for t in stopped["trials"]} == {"cancelled"}


def test_pruned_and_failed_trials_count_but_only_finished_values_rank(client, session_factory, settings, enqueued,
                                                                      iris_split):
    body = {"name": "p", "base": _base(iris_split["id"]), "space": CONDITIONAL,
            "objective": {"metric": "val/accuracy", "use": "final"}, "strategy": "grid", "budget": {"parallel": 3}}
    study = client.post(f"{API}/studies", json=body).json()
    a, b, c = (t["experiment_id"] for t in study["trials"])
    _finish(session_factory, a, [0.9, 0.6])  # final 0.6
    _finish(session_factory, b, [0.95], status="pruned")
    _finish(session_factory, c, [], status="failed")
    read = client.get(f"{API}/studies/{study['id']}").json()
    assert read["counts"] == {"succeeded": 1, "pruned": 1, "failed": 1}
    assert read["best"]["experiment_id"] == a and read["best"]["value"] == 0.6
    listed = client.get(f"{API}/studies").json()
    assert listed["total"] == 1 and listed["items"][0]["trials"] == [] and listed["items"][0]["best"]["value"] == 0.6


def test_a_per_solver_tournament_prunes_within_each_solver(client, iris_split):
    body = {"base": _base(iris_split["id"]), "solvers": ["adam", "sgd"], "points": 2, "per_solver": True}
    study = client.post(f"{API}/studies/tournament", json=body).json()
    assert study["spec"]["pruner"] == {**study["spec"]["pruner"], "name": "asha", "group_by": "solver.name"}
