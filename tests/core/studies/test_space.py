"""The study models: what a space accepts, what it refuses (and that the message names the
path), and the defaults derived from the rest of the study."""

import pytest
from pydantic import ValidationError

from core.studies.space import MAX_DEPTH, Objective, StudySpec, parse_space

LR = {"type": "float", "low": 1e-4, "high": 1e-1, "log": True, "points": 4}
NAME = {"type": "categorical", "values": ["adam", "sgd"]}


def _nest(depth: int) -> dict:
    """A space whose `when` nests ``depth`` levels deep."""
    space = {f"p{depth}": {"type": "int", "low": 1, "high": 2}}
    for level in reversed(range(depth)):
        space = {f"p{level}": {"type": "categorical", "values": ["a"], "when": {"a": space}}}
    return space


@pytest.mark.parametrize("space, says", [
    ({"solver.base_lr": {**LR, "low": 1.0, "high": 1.0}}, "solver.base_lr"),
    ({"solver.base_lr": {**LR, "low": 0.0}}, "log scale needs low > 0"),
    ({"solver.base_lr": {**LR, "points": 1}}, "solver.base_lr"),
    ({"training.batch_size": {"type": "int", "low": 16, "high": 60, "step": 16}}, "training.batch_size"),
    ({"training.batch_size": {"type": "int", "low": 0, "high": 8, "log": True}}, "training.batch_size"),
    ({"solver.name": {"type": "categorical", "values": []}}, "solver.name"),
    ({"solver.name": {"type": "categorical", "values": ["adam", "adam"]}}, "values repeat"),
    ({"solver.name": {**NAME, "when": {"lion": {"solver.base_lr": LR}}}}, "['lion'] are not among"),
    ({"solver.name": {"type": "categorical", "values": [1, 2], "when": {1: {}}}}, "solver.name"),
    ({"solver.base_lr": LR, "solver.name": {**NAME, "when": {"adam": {"solver.base_lr": LR}}}},
     "solver.base_lr appears twice"),
    ({"a": {**NAME, "when": {"adam": {"x": LR}}}, "b": {**NAME, "when": {"sgd": {"x": LR}}}},
     "x appears under both a and b"),
    ({"solver.name": {**NAME, "when": {"adam": {"solver.name": NAME}}}}, "solver.name appears twice"),
    ({"solver..lr": LR}, "'solver..lr' is not a dotted spec path"),
    ({"solver.base_lr": {**LR, "kind": "x"}}, "solver.base_lr"),
    ({"solver.base_lr": {"type": "normal", "low": 0, "high": 1}}, "solver.base_lr"),
    (_nest(MAX_DEPTH + 1), f"deeper than {MAX_DEPTH}"),
    ({}, "empty"),
])
def test_a_bad_space_is_refused_naming_the_path(space, says):
    with pytest.raises((ValidationError, ValueError)) as e:
        parse_space(space)
    assert says in str(e.value)


@pytest.mark.parametrize("space", [
    {"solver.name": {**NAME, "when": {"adam": {"solver.base_lr": LR}, "sgd": {"solver.base_lr": LR}}}},
    {"solver.betas.0": {"type": "float", "low": 0.8, "high": 0.99}},
    {"training.batch_size": {"type": "categorical", "values": [None, 16, 1.5, True, "x"],
                             "when": {"null": {"a": LR}, "16": {"b": LR}, "true": {"c": LR}}}},
    _nest(MAX_DEPTH),
])
def test_a_sound_space_is_accepted(space):
    assert list(parse_space(space)) == list(space)


def _study(**kw):
    return StudySpec(**{"name": "s", "base": {}, "space": {"solver.base_lr": LR},
                        "objective": {"metric": "val/loss"}, **kw})


@pytest.mark.parametrize("kw, max_trials", [
    ({"strategy": "grid"}, 4),
    ({"strategy": "grid", "budget": {"max_trials": 3}}, 3),
    ({"strategy": "random"}, 20),
    ({}, 20),
    ({"budget": {"max_trials": 7}}, 7),
])
def test_max_trials_defaults_from_the_strategy(kw, max_trials):
    assert _study(**kw).budget.max_trials == max_trials


@pytest.mark.parametrize("space, says", [
    ({"solver.base_lr": {**LR, "points": None}}, "solver.base_lr: the grid strategy needs `points`"),
    ({"a": {**LR, "points": 101}, "b": {**LR, "points": 100}}, "more than 10000"),
])
def test_a_grid_needs_points_and_a_bounded_size(space, says):
    with pytest.raises(ValidationError, match=says.replace("`", ".")):
        _study(space=space, strategy="grid")


@pytest.mark.parametrize("objective, mode, direction", [
    ({"metric": "val/accuracy"}, "max", "maximize"),
    ({"metric": "val/loss"}, "min", "minimize"),
    ({"metric": "val/loss", "mode": "max"}, "max", "maximize"),
])
def test_the_objective_mode_derives_from_the_metric(objective, mode, direction):
    o = Objective(**objective)
    assert (o.mode, o.direction, o.use) == (mode, direction, "best")


def test_every_field_is_described_for_the_openapi_schema():
    def walk(schema, where):
        for name, prop in schema.get("properties", {}).items():
            assert prop.get("description"), f"{where}.{name} has no description"
    schema = StudySpec.model_json_schema()
    walk(schema, "StudySpec")
    for name, definition in schema["$defs"].items():
        walk(definition, name)
