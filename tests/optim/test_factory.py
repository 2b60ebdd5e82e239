"""build_optimizer over the catalog (defaults, validation, model, wrapper, closure contract, the
fused flag against the kernel being called) and derive_scheduler_params against its documented rules, check_scheduler_params against torch."""

from __future__ import annotations

import pytest
import torch

import optim
from optim import _fused, catalog
from optim.factory import (
    build_optimizer,
    check_scheduler_params,
    derive_scheduler_params,
    has_fused_step,
    scheduled_steps,
)
from optim.schedulers import LinearWarmup

SOLVERS = sorted(catalog.SOLVERS)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()


def _closure(opt, model):
    x = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = model(x).pow(2).mean()
        loss.backward()
        return loss

    return closure


@pytest.mark.parametrize("name", SOLVERS)
def test_builds_the_named_class_with_catalog_defaults(name):
    entry = catalog.solver(name)
    model = _model()
    opt = build_optimizer(model.parameters(), name, {}, model=model)
    assert type(opt).__name__.lower() == name
    group = opt.param_groups[0]
    for key, default in entry.defaults().items():
        if key in group and default is not None:  # None means "computed by the constructor" (max_eval)
            assert group[key] == (tuple(default) if isinstance(default, list) else default), key


@pytest.mark.parametrize("name", SOLVERS)
def test_closure_contract(name):
    """needs_closure solvers refuse a step without one; the others step after backward() alone."""
    entry = catalog.solver(name)
    model = _model()
    opt = build_optimizer(model.parameters(), name, {}, model=model)
    closure = _closure(opt, model)
    before = [p.detach().clone() for p in model.parameters()]
    if entry.needs_closure:
        closure()
        with pytest.raises((TypeError, RuntimeError, ValueError)):
            opt.step()
        loss = opt.step(closure)
        assert loss is not None
    else:
        closure()
        opt.step()
    if name != "randomsearch":  # a greedy search may keep the point
        assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters())), f"{name} did not move"


@pytest.mark.parametrize("name", [n for n in SOLVERS if catalog.solver(n).needs_model])
def test_model_solvers_need_the_model(name):
    with pytest.raises(ValueError, match="model"):
        build_optimizer(_model().parameters(), name, {})


@pytest.mark.parametrize(
    ("name", "hparams", "field"),
    [
        ("nosuchsolver", {}, "solver"),
        ("sgd", {"lr": -1.0}, "lr"),
        ("sgd", {"momentum": "high"}, "momentum"),
        ("sgd", {"learning_rate": 0.1}, "learning_rate"),
        ("adam", {"betas": (0.9, 1.0)}, "betas"),
        ("lookahead", {"base": "nosuchsolver"}, "base"),
    ],
)
def test_bad_input_raises_value_error_naming_the_field(name, hparams, field):
    with pytest.raises(ValueError, match=field):
        build_optimizer(_model().parameters(), name, hparams)


def test_foreach_is_passed_on_and_refused_where_absent():
    model = _model()
    assert build_optimizer(model.parameters(), "adam", {}, foreach=True).defaults["foreach"] is True
    with pytest.raises(ValueError, match="foreach"):
        build_optimizer(model.parameters(), "lbfgs", {}, foreach=True)


# the solvers optim/_fused_cpu.cpp has kernels for (the 8-bit ones for their 32-bit tensors)
FUSED = {"sgd", "adam", "adamw", "adam8bit", "adamw8bit", "rmsprop", "adagrad", "lion", "lion8bit", "lamb"}


def _kernel_calls(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = _fused.run
    monkeypatch.setattr(_fused, "run", lambda op, *args: calls.append(op) or real(op, *args))
    return calls


@pytest.mark.parametrize("name", SOLVERS)
def test_fused_reaches_the_kernel_where_the_solver_has_one_and_is_refused_elsewhere(name, monkeypatch):
    """has_fused_step is true exactly for the kernels' solvers (Lookahead: its default base, Adam);
    with fused=True their step calls the kernel (the oracle: optim._fused.run is called), without
    it never, and any other solver refuses the flag naming it."""
    entry = catalog.solver(name)
    assert has_fused_step(name) == (name in FUSED or entry.wraps)
    model = _model()
    if not has_fused_step(name):
        with pytest.raises(ValueError, match="^fused: "):
            build_optimizer(model.parameters(), name, {}, model=model, fused=True)
        return
    calls = _kernel_calls(monkeypatch)
    for fused, want in ((None, False), (True, True)):
        calls.clear()
        opt = build_optimizer(model.parameters(), name, {}, model=model, fused=fused)
        _closure(opt, model)()
        opt.step()
        assert bool(calls) == want, fused


@pytest.mark.parametrize(("base", "want"), [("rmsprop", True), ("lion", True), ("nadam", False)])
def test_a_wrapper_has_a_fused_step_through_its_base(base, want, monkeypatch):
    assert has_fused_step("lookahead", {"base": base}) is want
    model = _model()
    if not want:
        with pytest.raises(ValueError, match="^fused: solver 'nadam'"):
            build_optimizer(model.parameters(), "lookahead", {"base": base}, fused=True)
        return
    calls = _kernel_calls(monkeypatch)
    opt = build_optimizer(model.parameters(), "lookahead", {"base": base}, fused=True)
    _closure(opt, model)()
    opt.step()
    assert calls == [f"{base}_"]


@pytest.mark.parametrize("base", ["sgd", "adam", "lion"])
def test_wrapper_builds_its_base_with_the_shared_lr_and_weight_decay(base):
    """Lookahead over a base = the base alone for k-1 steps, then the slow-weight interpolation."""
    model, twin = _model(), _model()
    wrapped = build_optimizer(model.parameters(), "lookahead", {"base": base, "lr": 0.05, "weight_decay": 0.01,
                                                                "k": 3, "alpha": 0.5})
    alone = build_optimizer(twin.parameters(), base, {"lr": 0.05, "weight_decay": 0.01})
    start = [p.detach().clone() for p in model.parameters()]
    for step in range(3):
        for opt, m in ((wrapped, model), (alone, twin)):
            _closure(opt, m)()
            opt.step()
        if step < 2:
            for a, b in zip(model.parameters(), twin.parameters()):
                assert torch.equal(a, b)
    # after k=3 fast steps: slow + alpha * (fast - slow) with slow = start
    for p, fast, s0 in zip(model.parameters(), twin.parameters(), start):
        assert torch.allclose(p, s0 + 0.5 * (fast - s0), rtol=1e-12, atol=1e-15)


# -- derive_scheduler_params ----------------------------------------------------------------------

# (scheduler, given params, epochs, steps per epoch) -> the documented values
DERIVED = [
    ("steplr", {}, 30, 10, {"step_size": 10}),
    ("steplr", {}, 2, 10, {"step_size": 1}),
    ("multisteplr", {}, 40, 10, {"milestones": [20, 30]}),
    ("multisteplr", {}, 1, 10, {"milestones": [1, 2]}),
    ("cosineannealinglr", {}, 17, 3, {"T_max": 17}),
    ("cosineannealingwarmrestarts", {}, 21, 3, {"T_0": 7}),
    ("cosineannealingwarmrestarts", {"T_mult": 2}, 21, 3, {"T_0": 3}),
    ("cycliclr", {"base_lr": 0.01, "max_lr": 0.1}, 5, 12, {"step_size_up": 24}),
    ("onecyclelr", {"max_lr": 0.1}, 5, 12, {"total_steps": 60}),
    ("onecyclelr", {"max_lr": 0.1, "warmup_steps": 10}, 5, 12, {"total_steps": 50}),
    ("linearlr", {}, 8, 3, {"total_iters": 8}),
    ("polynomiallr", {}, 8, 3, {"total_iters": 8}),
    ("cosineannealinglr", {"T_max": 4}, 17, 3, {"T_max": 4}),  # given values are kept
    ("constantlr", {}, 8, 3, {"total_iters": 5}),  # not a run length: torch's default stays
]


@pytest.mark.parametrize(("name", "given", "epochs", "per_epoch", "want"), DERIVED)
def test_derived_lengths_follow_the_documented_rules(name, given, epochs, per_epoch, want):
    entry = catalog.scheduler(name)
    params = entry.validate_params(given)
    before = dict(params)
    out = derive_scheduler_params(entry, params, epochs, per_epoch)
    assert params == before, "derive_scheduler_params must not modify its input"
    for key, value in want.items():
        assert out[key] == value


# fields derived from the solver's learning rate L (and, for ExponentialLR, the epochs)
DERIVED_FROM_LR = [
    ("onecyclelr", {}, 0.02, {"max_lr": 0.02}),
    ("onecyclelr", {"max_lr": 0.5}, 0.02, {"max_lr": 0.5}),
    ("cycliclr", {}, 0.01, {"base_lr": 0.01, "max_lr": 0.04}),  # Smith 2017: the range spans 3-4x
    ("cycliclr", {"base_lr": 0.001}, 0.01, {"base_lr": 0.001, "max_lr": 0.004}),
    ("cycliclr", {"max_lr": 0.3}, 0.01, {"base_lr": 0.01, "max_lr": 0.3}),
]


@pytest.mark.parametrize(("name", "given", "base_lr", "want"), DERIVED_FROM_LR)
def test_learning_rate_bounds_derive_from_the_solver_lr(name, given, base_lr, want):
    out = derive_scheduler_params(catalog.scheduler(name), given, 5, 12, base_lr=base_lr)
    for key, value in want.items():
        assert out[key] == pytest.approx(value, rel=1e-15)


def test_exponential_decay_left_out_reaches_one_percent_at_the_last_epoch():
    for epochs in (1, 7, 20):
        gamma = derive_scheduler_params(catalog.scheduler("exponentiallr"), {}, epochs, 3)["gamma"]
        assert gamma**epochs == pytest.approx(0.01, rel=1e-12)


@pytest.mark.parametrize("base_lr", [None, 0.0, -1.0])
def test_lr_bounds_without_a_usable_solver_lr_name_the_field(base_lr):
    with pytest.raises(ValueError, match="max_lr"):
        derive_scheduler_params(catalog.scheduler("onecyclelr"), {}, 5, 12, base_lr=base_lr)


@pytest.mark.parametrize(
    ("name", "epochs", "per_epoch", "field"),
    [("cosineannealinglr", None, 5, "T_max"), ("cycliclr", 5, None, "step_size_up"),
     ("onecyclelr", 0, 5, "total_steps")],
)
def test_missing_training_numbers_name_the_field(name, epochs, per_epoch, field):
    entry = catalog.scheduler(name)
    with pytest.raises(ValueError, match=field):
        derive_scheduler_params(entry, {"base_lr": 0.1, "max_lr": 0.2}, epochs, per_epoch)


# -- check_scheduler_params ----------------------------------------------------------------------

# (scheduler, params after derivation, epochs, steps per epoch) -> (field, part of the message) found
CHECKS = [
    ("onecyclelr", {"max_lr": 0.1, "total_steps": 59}, 5, 12, [("total_steps", "fewer than the 60 steps")]),
    ("onecyclelr", {"max_lr": 0.1, "total_steps": 60}, 5, 12, []),
    ("onecyclelr", {"max_lr": 0.1, "total_steps": 10_000}, 5, 12, []),  # longer is allowed: the cycle is cut
    ("onecyclelr", {"max_lr": 0.1, "total_steps": 49, "warmup_steps": 10}, 5, 12,
     [("total_steps", "fewer than the 50 steps")]),
    ("onecyclelr", {"max_lr": 0.1, "total_steps": 50, "warmup_steps": 10}, 5, 12, []),
    ("onecyclelr", {"max_lr": 0.1, "total_steps": 1, "warmup_steps": 500}, 5, 12, []),  # warm-up fills the run
    ("onecyclelr", {"max_lr": 0.1, "total_steps": 1}, None, 12, []),  # length unknown: left to the worker
    ("onecyclelr", {"max_lr": 0.1}, 5, 12, []),  # not derived yet: nothing to compare
    ("cycliclr", {"base_lr": 0.1, "max_lr": 0.01, "step_size_up": 4}, 5, 12, [("max_lr", "below base_lr 0.1")]),
    ("cycliclr", {"base_lr": 0.1, "max_lr": 0.1, "step_size_up": 4}, 5, 12, []),  # a flat cycle is torch's own
    ("cycliclr", {"base_lr": 0.01, "max_lr": 0.04, "step_size_up": 4}, 5, 12, []),
    ("cycliclr", {"max_lr": 0.04}, 5, 12, []),
    ("steplr", {"step_size": 1}, 5, 12, []),
]


@pytest.mark.parametrize(("name", "params", "epochs", "per_epoch", "want"), CHECKS)
def test_scheduler_fields_are_checked_against_each_other_and_the_run(name, params, epochs, per_epoch, want):
    problems = check_scheduler_params(catalog.scheduler(name), params, epochs, per_epoch)
    assert [field for field, _ in problems] == [field for field, _ in want]
    for (_, msg), (_, part) in zip(problems, want):
        assert part in msg


def _train(opt, sched, epochs, per_epoch):
    """The engine's stepping: ``step_batch`` after every optimizer step, ``step_epoch`` after every epoch."""
    for _ in range(epochs):
        for _ in range(per_epoch):
            opt.step()
            sched.step_batch()
        sched.step_epoch()


@pytest.mark.parametrize("warmup", [0, 7])
def test_the_one_cycle_check_refuses_exactly_what_torch_fails_on(warmup):
    epochs, per_epoch = 3, 5
    needed = scheduled_steps(epochs, per_epoch, warmup)
    for total, accepted in ((needed, True), (needed - 1, False)):
        params = {"max_lr": 0.1, "total_steps": total, "warmup_steps": warmup}
        assert (check_scheduler_params(catalog.scheduler("onecyclelr"), params, epochs, per_epoch) == []) is accepted
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        # the oracle: torch's own OneCycleLR behind the same warm-up, unchecked
        inner = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=total)
        sched = LinearWarmup(opt, inner, warmup_steps=warmup, start_factor=0.0, interval="step")
        if accepted:
            _train(opt, sched, epochs, per_epoch)
        else:
            with pytest.raises(ValueError, match="Tried to step"):
                _train(opt, sched, epochs, per_epoch)
            with pytest.raises(ValueError, match="total_steps"):  # build_scheduler refuses it up front
                optim.build_scheduler(torch.optim.SGD(_model().parameters(), lr=0.1, momentum=0.9), "onecyclelr",
                                      {"max_lr": 0.1, "total_steps": total}, warmup_steps=warmup,
                                      epochs=epochs, steps_per_epoch=per_epoch)


def test_derived_one_cycle_length_passes_the_check():
    entry = catalog.scheduler("onecyclelr")
    for warmup in (0, 10, 59, 60, 500):
        params = derive_scheduler_params(entry, {"warmup_steps": warmup}, 5, 12, base_lr=0.1)
        assert check_scheduler_params(entry, params, 5, 12) == []


def test_optim_exports_the_factory_built_classes():
    for name in SOLVERS:
        assert catalog.load_class(catalog.solver(name)) is getattr(optim, catalog.load_class(catalog.solver(name)).__name__)
