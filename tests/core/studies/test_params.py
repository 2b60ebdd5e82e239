"""A trial's parameters on the base spec: paths set on a copy, a switched section keeping only
what its new solver, scheduler or architecture accepts, and every result a valid
``ExperimentSpec``."""

import copy

import pytest

from core.spec import ExperimentSpec
from core.spec.experiment import EXAMPLE_SPEC
from core.studies.params import accepted_keys, active_params, apply, label
from core.studies.space import parse_space

BASE = copy.deepcopy(EXAMPLE_SPEC)  # adam, betas, weight_decay; mlp; cosine with warm-up


@pytest.mark.parametrize("params, section, expected", [
    ({"solver.base_lr": 0.1}, "solver",
     {"name": "adam", "base_lr": 0.1, "betas": [0.9, 0.999], "weight_decay": 0.0}),
    ({"solver.name": "sgd", "solver.momentum": 0.9}, "solver",  # adam's betas do not reach sgd
     {"name": "sgd", "base_lr": 0.01, "weight_decay": 0.0, "momentum": 0.9}),
    ({"solver.name": "lion"}, "solver", {"name": "lion", "base_lr": 0.01, "betas": [0.9, 0.999],
                                         "weight_decay": 0.0}),
    ({"solver.name": "lbfgs"}, "solver", {"name": "lbfgs", "base_lr": 0.01, "weight_decay": 0.0}),  # L2 penalty
    ({"solver.name": "adam"}, "solver",  # the same name: nothing reset
     {"name": "adam", "base_lr": 0.01, "betas": [0.9, 0.999], "weight_decay": 0.0}),
    ({"solver.betas.1": 0.99}, "solver",
     {"name": "adam", "base_lr": 0.01, "betas": [0.9, 0.99], "weight_decay": 0.0}),
    ({"solver.name": "adamw", "solver.betas.0": 0.8}, "solver",
     {"name": "adamw", "base_lr": 0.01, "betas": [0.8, 0.999], "weight_decay": 0.0}),
    ({"architecture.name": "linear"}, "architecture", {"name": "linear"}),
    ({"architecture.width": 8, "architecture.activation": "tanh"}, "architecture",
     {"name": "mlp", "depth": 2, "width": 8, "activation": "tanh"}),
    ({"scheduler.name": "steplr", "scheduler.step_size": 5}, "scheduler",
     {"name": "steplr", "warmup_steps": 20, "step_size": 5}),  # eta_min is cosine's alone
    ({"scheduler": None}, "scheduler", None),
    ({"training.batch_size": 32}, "training", {"epochs": 30, "batch_size": 32, "seed": 0}),
])
def test_apply_sets_the_paths_and_keeps_the_spec_valid(params, section, expected):
    spec = apply(BASE, params)
    assert spec[section] == expected
    ExperimentSpec.model_validate(spec)
    assert BASE == EXAMPLE_SPEC  # the base is not touched


def test_apply_starts_a_missing_section_and_a_missing_list():
    spec = apply({**BASE, "solver": {"name": "sgd"}}, {"solver.name": "adam", "solver.betas.0": 0.5})
    assert spec["solver"] == {"name": "adam", "betas": [0.5, 0.999]}
    assert apply({"name": "x"}, {"training.epochs": 3}) == {"name": "x", "training": {"epochs": 3}}
    with pytest.raises(ValueError, match="solver.betas.5: index 5"):
        apply(BASE, {"solver.betas.5": 0.5})


@pytest.mark.parametrize("section, name, has, lacks", [
    ("solver", "sgd", {"base_lr", "momentum", "weight_decay"}, {"betas", "lr"}),
    ("solver", "rprop", {"base_lr", "weight_decay", "etas"}, {"betas"}),
    ("scheduler", "steplr", {"step_size", "warmup_steps"}, {"eta_min"}),
    ("architecture", "mlp", {"width", "depth"}, {"channels"}),
])
def test_accepted_keys_come_from_the_spec_models(section, name, has, lacks):
    keys = accepted_keys(section, name)
    assert has <= keys and not (lacks & keys)


def test_accepted_keys_of_an_unknown_name_is_none():
    assert accepted_keys("solver", "nope") is None


SPACE = parse_space({
    "solver.name": {"type": "categorical", "values": ["adam", "sgd"], "when": {
        "adam": {"solver.base_lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}},
        "sgd": {"solver.momentum": {"type": "float", "low": 0.0, "high": 0.99}},
    }},
    "training.batch_size": {"type": "int", "low": 16, "high": 64},
})


@pytest.mark.parametrize("params, active", [
    ({"solver.name": "adam", "solver.base_lr": 0.01, "solver.momentum": 0.5, "training.batch_size": 16},
     {"solver.name": "adam", "solver.base_lr": 0.01, "training.batch_size": 16}),
    ({"training.batch_size": 16, "solver.momentum": 0.5, "solver.name": "sgd", "x": 1},
     {"solver.name": "sgd", "solver.momentum": 0.5, "training.batch_size": 16}),
    ({"training.batch_size": 16}, {"training.batch_size": 16}),
])
def test_active_params_follow_the_branch_taken(params, active):
    got = active_params(SPACE, params)
    assert got == active and list(got) == list(active)


@pytest.mark.parametrize("params, text", [
    ({"solver.name": "adam", "solver.base_lr": 0.001}, "adam lr=0.001"),
    ({"solver.name": "sgd", "solver.base_lr": 0.123456, "solver.nesterov": True}, "sgd lr=0.123 nesterov=true"),
    ({"training.batch_size": 32, "solver.betas.0": 0.9, "scheduler": None}, "bs=32 betas[0]=0.9 scheduler=null"),
    ({}, ""),
])
def test_label(params, text):
    assert label(params) == text
