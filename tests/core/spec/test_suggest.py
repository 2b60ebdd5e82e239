"""The "did you mean" hints: over pydantic's own errors for the experiment spec, and the pure
name matching beneath them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.spec import ExperimentSpec
from core.spec.suggest import closest, hint, model_at, typo_distance, with_hints
from optim import catalog

BASE = {"name": "x", "split_id": 1, "architecture": {"name": "mlp"}, "solver": {"name": "sgd"}}


def errors_of(spec: dict) -> list[dict]:
    with pytest.raises(ValidationError) as caught:
        ExperimentSpec.model_validate(spec)
    return caught.value.errors()


@pytest.mark.parametrize("change, loc, want", [
    ({"solver": {"name": "adma"}}, ("solver",), "did you mean 'adam'?"),
    ({"solver": {"name": "ADAM W"}}, ("solver",), "did you mean 'adamw'?"),
    ({"solver": {"name": "l-bfgs"}}, ("solver",), "did you mean 'lbfgs'?"),
    ({"scheduler": {"name": "cosine"}}, ("scheduler",), "did you mean 'cosineannealinglr'?"),
    ({"scheduler": {"name": "onecycle"}}, ("scheduler",), "did you mean 'onecyclelr'?"),
    ({"architecture": {"name": "transfomer"}}, ("architecture",), "did you mean 'transformer'?"),
    ({"solver": {"name": "adam", "lr": 1e-3}}, ("solver", "adam", "lr"), "did you mean 'base_lr'?"),
    ({"solver": {"name": "adam", "learning_rate": 1e-3}}, ("solver", "adam", "learning_rate"),
     "did you mean 'base_lr'?"),
    ({"solver": {"name": "adamw", "wd": 0.1}}, ("solver", "adamw", "wd"), "did you mean 'weight_decay'?"),
    ({"solver": {"name": "adam", "beta": [0.9, 0.99]}}, ("solver", "adam", "beta"), "did you mean 'betas'?"),
    ({"training": {"epoch": 2}}, ("training", "epoch"), "did you mean 'epochs'?"),
    ({"training": {"num_epochs": 2}}, ("training", "num_epochs"), "did you mean 'epochs'?"),
    ({"training": {"batchsize": 2}}, ("training", "batchsize"), "did you mean 'batch_size'?"),
    ({"training": {"device": "gpu"}}, ("training", "device"), "did you mean 'cuda'?"),
    ({"training": {"device": "tpu9"}}, ("training", "device"), None),  # nothing close: no guess
    ({"training": {"device": "cdua"}}, ("training", "device"), "did you mean 'cuda'?"),
    ({"optimizer": {"name": "adam"}}, ("optimizer",), "did you mean 'solver'?"),
    ({"arch": {"name": "mlp"}}, ("arch",), "did you mean 'architecture'?"),
    ({"lr_scheduler": {"name": "steplr"}}, ("lr_scheduler",), "did you mean 'scheduler'?"),
    ({"lr": 0.1}, ("lr",), "did you mean solver.base_lr?"),
    ({"batch_size": 8}, ("batch_size",), "did you mean training.batch_size?"),
    ({"tag": ["a"]}, ("tag",), "did you mean 'tags'?"),
    ({"zzzzzz": 1}, ("zzzzzz",), None),
])
def test_each_error_gets_the_name_it_most_likely_meant(change, loc, want):
    spec = {**BASE, **change}
    by_loc = {e["loc"]: hint(e, ExperimentSpec) for e in errors_of(spec)}
    assert by_loc[loc] == want


def test_with_hints_appends_to_the_message_under_a_prefix_and_keeps_the_rest():
    errors = [{**e, "loc": ("body", *e["loc"])} for e in errors_of({**BASE, "solver": {"name": "adma"}, "xq": 1})]
    out = with_hints(errors, ExperimentSpec, prefix=("body",))
    solver = next(e for e in out if e["loc"] == ("body", "solver"))
    assert solver["msg"].startswith("no solver named 'adma' (the solvers: sgd, ")
    assert solver["msg"].endswith("; did you mean 'adam'?")
    assert solver["type"] == "union_tag_invalid"  # only the message changes
    unrelated = next(e for e in out if e["loc"] == ("body", "xq"))
    assert unrelated["msg"] == "Extra inputs are not permitted"
    assert with_hints(errors, ExperimentSpec, prefix=("query",))[1]["msg"] == errors[1]["msg"]


def test_every_solver_name_one_slip_away_finds_itself():
    for name in catalog.SOLVERS:
        if len(name) < 4:
            continue
        swapped = name[0] + name[2] + name[1] + name[3:]
        assert closest(swapped, catalog.SOLVERS) == name, swapped


@pytest.mark.parametrize("a, b, distance", [
    ("adma", "adam", 1), ("adam", "adam", 0), ("kitten", "sitting", 3), ("", "sgd", 3), ("ab", "ba", 1),
])
def test_typo_distance_counts_a_swap_as_one_edit(a, b, distance):
    assert typo_distance(a, b) == distance


@pytest.mark.parametrize("loc, field", [
    ((), "split_id"),
    (("training",), "epochs"),
    (("solver", "adam"), "betas"),
    (("scheduler", "steplr"), "step_size"),
    (("solver",), None),  # a union needs its tag
    (("nope",), None),
])
def test_model_at_follows_the_path_pydantic_writes(loc, field):
    model = model_at(ExperimentSpec, loc)
    assert (field in model.model_fields) if field else model is None


def test_an_input_longer_than_any_name_gets_no_hint_and_costs_nothing():
    """The spelling distance is len(typed) × len(name) steps: a megabyte-long "solver name" in a
    request body must not buy seconds of the api's CPU."""
    import time

    from core.spec.suggest import MAX_TYPED, closest

    assert closest("lr" + " " * (MAX_TYPED - 2), ["base_lr"]) == "base_lr"  # at the bound: still looked at
    assert closest("lr" + " " * (MAX_TYPED - 1), ["base_lr"]) is None  # past it: no hint
    started = time.process_time()
    assert closest("a" * 1_000_000, ["adam", "adamw", "sgd"]) is None
    assert time.process_time() - started < 0.05
    assert closest("adma", ["adam", "adamax"]) == "adam"
