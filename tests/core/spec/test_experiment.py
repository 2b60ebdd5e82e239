"""The shared experiment spec: catalog-driven validation with paths, defaults, data-dependent resolution."""

import pytest
from pydantic import ValidationError

from core.datasets import builtin_info
from core.spec import ExperimentSpec, resolve_spec
from core.spec.experiment import SpecError, steps_per_epoch
from optim import catalog


def spec(**over):
    body = {"name": "e", "split_id": 1, "architecture": {"name": "mlp"}, "solver": {"name": "adam"}}
    body.update(over)
    return ExperimentSpec.model_validate(body)


def error_locs(exc: ValidationError) -> list[tuple]:
    return [tuple(e["loc"]) for e in exc.errors()]


def test_minimal_body_gets_every_default_from_the_catalog():
    s = spec()
    entry = catalog.solver("adam")
    assert s.solver_hparams() == entry.defaults()
    assert s.solver.base_lr == entry.hyperparameter("lr").default
    assert s.architecture.depth == 2 and s.training.epochs == 20 and s.training.batch_size == 64
    assert s.scheduler.name == "constant"


@pytest.mark.parametrize(
    "override, loc",
    [
        ({"solver": {"name": "adam", "base_lr": -0.1}}, ("solver", "adam", "base_lr")),
        ({"solver": {"name": "adam", "betas": [0.9, 1.0]}}, ("solver", "adam", "betas", 1)),
        ({"solver": {"name": "adam", "momentum": 0.9}}, ("solver", "adam", "momentum")),
        ({"solver": {"name": "nosuchsolver"}}, ("solver",)),
        ({"architecture": {"name": "mlp", "depth": 0}}, ("architecture", "mlp", "depth")),
        ({"training": {"epochs": 0}}, ("training", "epochs")),
        ({"training": {"batch_size": 0}}, ("training", "batch_size")),
        ({"training": {"grad_clip_norm": -1}}, ("training", "grad_clip_norm")),
        ({"scheduler": {"name": "steplr", "gamma": "fast"}}, ("scheduler", "steplr", "gamma")),
        ({"extra": 1}, ("extra",)),
    ],
)
def test_bad_values_are_reported_with_their_path(override, loc):
    with pytest.raises(ValidationError) as info:
        spec(**override)
    assert loc in error_locs(info.value), error_locs(info.value)


@pytest.mark.parametrize("override, loc", [
    ({"name": "a\x00"}, ("name",)),
    ({"description": "\x00"}, ("description",)),
    ({"tags": ["fine", "b\x00d"]}, ("tags", 1)),
])
def test_nul_characters_are_refused_naming_the_field(override, loc):
    with pytest.raises(ValidationError) as info:
        spec(**override)
    (error,) = info.value.errors()
    assert (tuple(error["loc"]), error["type"], error["msg"]) == (loc, "string_nul", "must not contain NUL characters")


def test_full_batch_is_null_batch_size():
    s = spec(training={"batch_size": None})
    assert s.training.batch_size is None
    assert steps_per_epoch(1000, None) == 1
    # partial last batches count as a step: 1000 rows in batches of 64 are 15 full ones and one of 40
    assert [steps_per_epoch(n, 64) for n in (1, 63, 64, 65, 1000, 1024)] == [1, 1, 1, 2, 16, 16]


@pytest.mark.parametrize(
    "dataset, loss, arch, problem",
    [
        ("iris", None, {"name": "mlp"}, None),
        ("diabetes", None, {"name": "mlp"}, None),
        ("iris", "mse", {"name": "mlp"}, ("training", "loss")),
        ("diabetes", "hinge", {"name": "linear"}, ("training", "loss")),
        ("digits", None, {"name": "cnn2d"}, None),
        ("iris", None, {"name": "cnn2d"}, ("architecture",)),
        ("iris", None, {"name": "transformer", "d_model": 30, "heads": 4}, ("architecture", "transformer", "heads")),
        ("iris", None, {"name": "cnn1d", "kernel_size": 7}, ("architecture", "cnn1d", "kernel_size")),
    ],
)
def test_resolution_checks_the_data(dataset, loss, arch, problem):
    info = builtin_info(dataset)
    s = spec(architecture=arch, training={"loss": loss})
    if problem is None:
        resolved = resolve_spec(s, info, n_train=100)
        expected = "cross_entropy" if info.task == "classification" else "mse"
        assert resolved.training.loss == (loss or expected)
    else:
        with pytest.raises(SpecError) as err:
            resolve_spec(s, info, n_train=100)
        assert problem in [loc for loc, _ in err.value.errors]


def test_scheduler_length_derives_from_epochs_and_split_size():
    s = spec(scheduler={"name": "cosineannealinglr"}, training={"epochs": 7, "batch_size": 32})
    resolved = resolve_spec(s, builtin_info("iris"), n_train=105)
    assert resolved.scheduler.T_max == 7  # an epoch-interval scheduler spans the epochs
    s = spec(scheduler={"name": "onecyclelr"}, training={"epochs": 3, "batch_size": 32})
    resolved = resolve_spec(s, builtin_info("iris"), n_train=105)
    assert resolved.scheduler.total_steps == 12  # 105 rows in batches of 32: 4 steps an epoch, 3 epochs
    # a step schedule starts after the warm-up: the cycle fits the steps left
    s = spec(scheduler={"name": "onecyclelr", "warmup_steps": 5}, training={"epochs": 3, "batch_size": 32})
    resolved = resolve_spec(s, builtin_info("iris"), n_train=105)
    assert resolved.scheduler.total_steps == 12 - 5 and resolved.scheduler.warmup_steps == 5


@pytest.mark.parametrize("scheduler, loc", [
    ({"name": "onecyclelr", "total_steps": 11}, ("scheduler", "total_steps")),  # the run takes 3 x 4 = 12
    ({"name": "onecyclelr", "total_steps": 9, "warmup_steps": 2}, ("scheduler", "total_steps")),
    ({"name": "cycliclr", "base_lr": 0.2, "max_lr": 0.1}, ("scheduler", "max_lr")),
])
def test_scheduler_fields_must_fit_each_other_and_the_run(scheduler, loc):
    s = spec(scheduler=scheduler, training={"epochs": 3, "batch_size": 32})
    with pytest.raises(SpecError) as err:
        resolve_spec(s, builtin_info("iris"), n_train=105)
    assert [loc] == [where for where, _ in err.value.errors]


def test_resolved_spec_round_trips_through_json():
    s = resolve_spec(spec(scheduler={"name": "steplr"}), builtin_info("wine"), n_train=120)
    again = ExperimentSpec.model_validate_json(s.model_dump_json())
    assert again == s


@pytest.mark.parametrize("name", sorted(catalog.SOLVERS))
def test_every_solver_section_takes_a_weight_decay(name):
    """Its own argument where the solver has one, else the engine's L2 penalty (never both, never
    passed to a constructor that does not take it)."""
    body = {"name": name, "weight_decay": 0.01}
    if catalog.solver(name).wraps:
        body["base"] = "adam"
    s = spec(solver=body)
    own = any(h.name == "weight_decay" for h in catalog.solver(name).hyperparameters)
    assert ("weight_decay" in s.solver_hparams()) == own
    assert s.l2_penalty() == (0.0 if own else 0.01)
    assert spec(solver={**body, "weight_decay": 0.0}).l2_penalty() == 0.0
    with pytest.raises(ValidationError):
        spec(solver={**body, "weight_decay": -1.0})


def test_a_range_test_section_has_defaults_and_refuses_an_empty_range_naming_the_fields():
    test = spec(training={"range_test": {}}).training.range_test
    assert (test.min_lr, test.max_lr, test.num_steps, test.diverge_factor, test.beta) == (1e-7, 10.0, 100, 4.0, 0.98)
    assert spec().training.range_test is None
    for bounds in ({"min_lr": 1.0, "max_lr": 1.0}, {"min_lr": 2.0, "max_lr": 1.0}):
        with pytest.raises(ValidationError) as exc:
            spec(training={"range_test": bounds})
        assert error_locs(exc.value) == [("training", "range_test")]
        assert "max_lr" in str(exc.value) and "min_lr" in str(exc.value)
    for bad, field in (({"num_steps": 9}, "num_steps"), ({"beta": 1.0}, "beta"), ({"diverge_factor": 1.0},
                       "diverge_factor"), ({"min_lr": 0.0}, "min_lr"), ({"max_lr": float("inf")}, "max_lr"),
                       ({"lr": 1.0}, "lr")):
        with pytest.raises(ValidationError) as exc:
            spec(training={"range_test": bad})
        assert error_locs(exc.value) == [("training", "range_test", field)]
