"""The scheduler catalog against torch's schedulers: names, intervals, defaults, bounds, and the
bounds torch itself enforces."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch

from optim import catalog
from optim.factory import DERIVATIONS
from optim.schedulers import LinearWarmup, build_scheduler

NAMES = {
    "constant", "steplr", "multisteplr", "exponentiallr", "cosineannealinglr", "cycliclr", "reducelronplateau",
    "cosineannealingwarmrestarts", "onecyclelr", "linearlr", "polynomiallr", "constantlr",
}
STEP_INTERVAL = {"cycliclr", "onecyclelr"}
METRIC_INTERVAL = {"reducelronplateau"}
# torch arguments deliberately not offered: a Python callable, its mode, and OneCycleLR's
# alternative to total_steps (the catalog derives total_steps from the same two numbers)
NOT_OFFERED = {"optimizer", "last_epoch", "scale_fn", "scale_mode", "epochs", "steps_per_epoch"}
WARMUP_ARGUMENTS = {"warmup_steps": "warmup_steps", "warmup_start_factor": "start_factor"}
ENTRIES = list(catalog.SCHEDULERS.values())
IDS = [e.name for e in ENTRIES]


def _optimizer():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9)


def test_the_catalog_lists_exactly_the_named_schedulers():
    assert set(catalog.SCHEDULERS) == NAMES


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_interval(entry):
    want = "step" if entry.name in STEP_INTERVAL else "metric" if entry.name in METRIC_INTERVAL else "epoch"
    assert entry.interval == want


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_defaults_are_the_constructor_defaults(entry):
    own = inspect.signature(catalog.load_class(entry)).parameters
    warm = inspect.signature(LinearWarmup).parameters
    for h in entry.hyperparameters:
        if h.name in WARMUP_ARGUMENTS:
            assert h.default == warm[WARMUP_ARGUMENTS[h.name]].default
            continue
        assert h.name in own, f"{entry.name}.{h.name} is not a constructor argument"
        default = own[h.name].default
        if h.derived_from:
            assert h.default is None  # filled from the training section, never a fixed default
        elif h.required:
            assert default is inspect.Parameter.empty
        else:
            assert h.default == default, f"{entry.name}.{h.name}: catalog {h.default!r} != torch {default!r}"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_every_torch_argument_is_offered_or_deliberately_left_out(entry):
    own = set(inspect.signature(catalog.load_class(entry)).parameters)
    assert own - {h.name for h in entry.hyperparameters} - NOT_OFFERED == set()


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_derived_fields_have_a_rule_and_the_rule_gives_valid_values(entry):
    from optim.factory import derive_scheduler_params

    for h in entry.hyperparameters:
        if h.derived_from:
            assert (entry.name, h.name) in DERIVATIONS
    for epochs, per_epoch in [(1, 1), (3, 2), (100, 50)]:
        filled = derive_scheduler_params(entry, entry.validate_params(_required(entry)), epochs, per_epoch,
                                         base_lr=0.05)
        entry.validate_params(filled)  # every derived value within its own bounds


def _required(entry) -> dict:
    return {h.name: (0.5 if h.name == "max_lr" else 0.01 if h.name == "base_lr" else 0.9)
            for h in entry.hyperparameters if h.required}


def _bound_cases(outside: bool):
    cases = []
    for entry in ENTRIES:
        for h in entry.hyperparameters:
            if h.type not in ("int", "float", "int_list"):
                continue
            for bound, exclusive, sign in ((h.minimum, h.exclusive_minimum, -1), (h.maximum, h.exclusive_maximum, 1)):
                if bound is None:
                    continue
                step = 1 if h.type != "float" else max(1e-9, abs(bound) * 1e-9)
                if outside:
                    value = bound if exclusive else bound + sign * step
                else:
                    value = bound - sign * step if exclusive else bound
                value = int(value) if h.type != "float" else float(value)
                if h.type == "int_list":
                    value = [value] if outside or sign < 0 else [1, value]
                cases.append(pytest.param(entry, h.name, value, id=f"{entry.name}.{h.name}={value}"))
    return cases


@pytest.mark.parametrize(("entry", "field", "value"), _bound_cases(outside=True))
def test_value_just_outside_a_bound_is_refused(entry, field, value):
    params = {**_required(entry), field: value}
    with pytest.raises(ValueError, match=field):
        entry.validate_params(params)
    with pytest.raises(ValueError, match=field):
        build_scheduler(_optimizer(), entry.name, params, epochs=10, steps_per_epoch=5)


@pytest.mark.parametrize(("entry", "field", "value"), _bound_cases(outside=False))
def test_value_on_the_inner_side_of_a_bound_builds_and_steps(entry, field, value):
    """A bound value is valid on its own; the other fields and the run are chosen to agree with
    it where a cross-field rule applies (check_scheduler_params): a cycle's lower bound at or
    below its upper one, a one-cycle at least as long as the run."""
    opt = _optimizer()
    params = {**_required(entry), field: value}
    epochs, per_epoch = 10, 5
    if (entry.name, field) == ("cycliclr", "max_lr"):
        params["base_lr"] = min(params.get("base_lr", value), value)
    if (entry.name, field) == ("onecyclelr", "total_steps"):
        epochs, per_epoch = 1, value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = build_scheduler(opt, entry.name, params, epochs=epochs, steps_per_epoch=per_epoch)
        if entry.interval != "step":  # a one-step cycle (total_steps=1) has no step left after building
            opt.step()
            sched.step_batch()
        sched.step_epoch(val_loss=1.0)


# bounds torch's own constructors enforce: the catalog must refuse them too (torch is the oracle)
TORCH_ENFORCED = [
    ("constantlr", {"factor": 1.01}),
    ("constantlr", {"factor": -0.01}),
    ("linearlr", {"start_factor": 0.0}),
    ("linearlr", {"start_factor": 1.01}),
    ("linearlr", {"end_factor": -0.01}),
    ("linearlr", {"end_factor": 1.01}),
    ("reducelronplateau", {"factor": 1.0}),
    ("cosineannealingwarmrestarts", {"T_0": 0}),
    ("cosineannealingwarmrestarts", {"T_0": 5, "T_mult": 0}),
    ("onecyclelr", {"max_lr": 0.1, "total_steps": 0}),
    ("onecyclelr", {"max_lr": 0.1, "total_steps": 10, "pct_start": 1.01}),
    ("onecyclelr", {"max_lr": 0.1, "total_steps": 10, "anneal_strategy": "cubic"}),
    ("cycliclr", {"base_lr": 0.01, "max_lr": 0.1, "mode": "sawtooth"}),
    ("reducelronplateau", {"mode": "median"}),
    ("reducelronplateau", {"threshold_mode": "ratio"}),
]


@pytest.mark.parametrize(("name", "params"), TORCH_ENFORCED, ids=[f"{n}-{p}" for n, p in TORCH_ENFORCED])
def test_what_torch_refuses_the_catalog_refuses(name, params):
    entry = catalog.scheduler(name)
    with pytest.raises(ValueError):
        catalog.load_class(entry)(_optimizer(), **params)
    with pytest.raises(ValueError):
        entry.validate_params(params)
