"""For every catalog solver with a ``foreach`` flag, the multi-tensor path equals the per-tensor
loop in float64 over 30 steps: two parameter groups, a step where one parameter has no gradient,
default hyperparameters and the variants that switch on each solver's optional branches."""

from __future__ import annotations

import inspect

import pytest

from optim import catalog
from optim.factory import build_optimizer
from tests.optim import parity

STEPS = 30

# solver -> hyperparameter variants beyond the defaults (each switches on an optional branch);
# only solvers with a foreach flag belong here (Shampoo, L-BFGS, ... have a single path), which
# test_every_variant_row_is_live enforces so that no row is silently skipped
VARIANTS = {
    "sgd": [{"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, {"momentum": 0.9, "dampening": 0.1}],
    "adagrad": [{"lr_decay": 0.01, "weight_decay": 0.01, "initial_accumulator_value": 0.1}],
    "adadelta": [{"weight_decay": 0.01}],
    "asgd": [{"t0": 5.0, "weight_decay": 0.01}],
    "rprop": [{"etas": (0.4, 1.3), "step_sizes": (1e-4, 0.05)}],
    "rmsprop": [{"momentum": 0.9, "centered": True, "weight_decay": 0.01}],
    "adam": [{"amsgrad": True, "weight_decay": 0.01}, {"decoupled_weight_decay": True, "weight_decay": 0.1}],
    "adamw": [{"amsgrad": True}],
    "adamax": [{"weight_decay": 0.01}],
    "nadam": [{"decoupled_weight_decay": True, "weight_decay": 0.01}],
    "radam": [{"decoupled_weight_decay": True, "weight_decay": 0.01}],
    "lion": [{"weight_decay": 0.1}],
    "adabound": [{"amsbound": True, "weight_decay": 0.01}],
    "adaboundw": [{"amsbound": True, "weight_decay": 0.01}],
    "lamb": [{"weight_decay": 0.01}],
    "lars": [{"exclude_1d": True, "weight_decay": 0.01}],
    "lookahead": [{"base": "sgd", "lr": 0.1}],
    "randomsearch": [{"n_samples": 3}],
    "kfac": [{"momentum": 0.0, "weight_decay": 0.01}],
}
# every stochastic solver gets a seed so the two runs draw the same noise
SEEDED = {"randomsearch": {"seed": 0}}


def _has_foreach(entry) -> bool:
    return "foreach" in inspect.signature(catalog.load_class(entry)).parameters


def _cases():
    cases = []
    for name in sorted(catalog.SOLVERS):
        entry = catalog.SOLVERS[name]
        if not _has_foreach(entry):
            continue
        for i, variant in enumerate([{}, *VARIANTS.get(name, [])]):
            cases.append(pytest.param(name, {**SEEDED.get(name, {}), **variant}, id=f"{name}-{i}"))
    return cases


def run(name: str, hparams: dict, foreach: bool, steps: int = STEPS):
    """Parameters after each of ``steps`` steps, driven as the engine drives the solver."""
    entry = catalog.solver(name)
    lr = hparams.get("lr", entry.defaults().get("lr"))
    group2 = {"lr": lr * 0.5} if lr else None
    if not entry.needs_model:
        def make(groups):
            return build_optimizer(groups, name, hparams, foreach=foreach)

        return parity.trajectory(make, steps, group2=group2, closure=entry.needs_closure)
    model = parity.mlp(parity.initial_params())
    params = list(model.parameters())
    groups = [{"params": params[:2]}, {"params": params[2:], **(group2 or {})}]
    opt = build_optimizer(groups, name, hparams, model=model, foreach=foreach)
    history = []
    for step in range(steps):
        x, y = parity.batch(step)
        opt.zero_grad(set_to_none=True)
        ((model(x) - y) ** 2).mean().backward()
        if step == parity.NO_GRAD_STEP:
            params[-1].grad = None
        opt.step()
        history.append([p.detach().clone() for p in params])
    return history


@pytest.mark.parametrize(("name", "hparams"), _cases())
def test_foreach_equals_the_loop(name, hparams):
    loop = run(name, hparams, foreach=False)
    multi = run(name, hparams, foreach=True)
    moved = max((a - b).abs().max().item() for a, b in zip(loop[-1], parity.initial_params(), strict=True))
    assert moved > 1e-6, f"{name}: parameters did not move; the comparison would be vacuous"
    parity.assert_same(multi, loop, tol=1e-10, what=f"{name} {hparams} foreach vs loop")


@pytest.mark.parametrize("table, rows", [("VARIANTS", VARIANTS), ("SEEDED", SEEDED)], ids=["VARIANTS", "SEEDED"])
def test_every_variant_row_is_live(table, rows):
    """Every row runs: its solver is in the catalog and has a ``foreach`` flag (``_cases`` skips
    any other, so a row for one would pass without ever running), and every hyperparameter it sets
    is one the solver declares (a misspelt one would be rejected at build time anyway)."""
    for name, variants in rows.items():
        assert name in catalog.SOLVERS, f"{table}[{name!r}]: not a catalog solver, the row never runs"
        entry = catalog.SOLVERS[name]
        assert _has_foreach(entry), f"{table}[{name!r}]: the solver has no foreach flag, the row never runs"
        known = {h.name for h in entry.hyperparameters}
        for variant in variants if isinstance(variants, list) else [variants]:
            assert set(variant) <= known, f"{table}[{name!r}]: {set(variant) - known}"
