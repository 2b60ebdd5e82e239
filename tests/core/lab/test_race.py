"""The race's spec: defaults from the function catalogue, solvers a 2-D point cannot use refused at
their field, and each racer's scheduler derived from the race's length (one epoch per step)."""

import pytest
from pydantic import ValidationError

from core.lab.functions import FUNCTIONS
from core.lab.race import MAX_RACERS, RaceSpec, resolve_race
from core.spec.experiment import SpecError
from optim import catalog


def race(**fields) -> dict:
    return {"function": "booth", "racers": [{"solver": {"name": "adam", "base_lr": 0.1}}], **fields}


def locs(exc: ValidationError) -> list[tuple]:
    return [e["loc"] for e in exc.errors()]


def test_start_defaults_to_the_functions_own_and_a_label_names_solver_and_lr():
    spec = RaceSpec.model_validate(race(function="beale"))
    assert spec.start == FUNCTIONS["beale"].start
    assert spec.racers[0].label == "adam lr=0.1"
    assert RaceSpec.model_validate(race(start=[0.5, -2])).start == (0.5, -2.0)


@pytest.mark.parametrize("name", sorted(n for n, e in catalog.SOLVERS.items() if e.needs_model))
def test_a_solver_that_needs_a_network_is_refused_at_its_field(name):
    with pytest.raises(ValidationError) as caught:
        RaceSpec.model_validate(race(racers=[{"solver": {"name": "sgd"}}, {"solver": {"name": name}}]))
    assert locs(caught.value) == [("racers", 1, "solver")]
    assert "first-order or quasi-Newton" in str(caught.value)


@pytest.mark.parametrize(("fields", "loc"), [
    ({"racers": []}, ("racers",)),
    ({"racers": [{"solver": {"name": "sgd"}}] * (MAX_RACERS + 1)}, ("racers",)),
    ({"steps": 0}, ("steps",)),
    ({"steps": 2001}, ("steps",)),
    ({"function": "rosenbrok"}, ("function",)),
    ({"start": [1.0]}, ("start", 1)),
    ({"start": [1.0, float("nan")]}, ("start", 1)),
    ({"racers": [{"solver": {"name": "adam", "base_lr": -1}}]}, ("racers", 0, "solver", "adam", "base_lr")),
])
def test_bad_fields_are_refused_where_they_are(fields, loc):
    with pytest.raises(ValidationError) as caught:
        RaceSpec.model_validate(race(**fields))
    assert loc in locs(caught.value)


def test_a_racers_scheduler_spans_the_race():
    spec = resolve_race(RaceSpec.model_validate(race(steps=300, racers=[
        {"solver": {"name": "sgd", "base_lr": 0.01}, "scheduler": {"name": "cosineannealinglr"}},
        {"solver": {"name": "sgd", "base_lr": 0.01}, "scheduler": {"name": "onecyclelr"}},
    ])))
    assert spec.racers[0].scheduler.T_max == 300
    assert spec.racers[1].scheduler.total_steps == 300
    assert spec.racers[1].scheduler.max_lr == 0.01


def test_a_scheduler_shorter_than_the_race_is_refused_at_its_field():
    spec = RaceSpec.model_validate(race(steps=100, racers=[
        {"solver": {"name": "sgd"}},
        {"solver": {"name": "sgd"}, "scheduler": {"name": "onecyclelr", "total_steps": 10}},
    ]))
    with pytest.raises(SpecError) as caught:
        resolve_race(spec)
    assert [loc for loc, _ in caught.value.errors] == [("racers", 1, "scheduler", "total_steps")]


def test_solver_arguments_follow_the_experiment_rules():
    spec = RaceSpec.model_validate(race(racers=[
        {"solver": {"name": "lbfgs", "base_lr": 0.5, "weight_decay": 0.1}},
        {"solver": {"name": "adamw", "base_lr": 0.01, "weight_decay": 0.1}},
    ]))
    lbfgs, adamw = spec.racers
    assert lbfgs.solver_hparams()["lr"] == 0.5 and "weight_decay" not in lbfgs.solver_hparams()
    assert lbfgs.l2_penalty() == 0.1  # L-BFGS has no weight decay of its own: an L2 penalty instead
    assert adamw.solver_hparams()["weight_decay"] == 0.1 and adamw.l2_penalty() == 0.0


def test_every_functions_start_and_minima_lie_within_its_bounds():
    for f in FUNCTIONS.values():
        x_min, x_max, y_min, y_max = f.bounds
        for x, y in [f.start, *((m.x, m.y) for m in f.minima), *f.saddles]:
            assert x_min <= x <= x_max and y_min <= y <= y_max, f.name
