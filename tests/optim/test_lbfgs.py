"""L-BFGS against torch.optim.LBFGS (same steps, same state) and on Rosenbrock's valley."""

import copy

import pytest
import torch

from optim import LBFGS
from tests.optim import parity

PARITY_CASES = {
    "fixed-step": dict(lr=0.1),
    "fixed-step-short-history": dict(lr=0.1, history_size=3),
    "strong-wolfe": dict(line_search_fn="strong_wolfe"),
    "strong-wolfe-short-history": dict(line_search_fn="strong_wolfe", history_size=2, max_iter=7),
    "strong-wolfe-few-evals": dict(line_search_fn="strong_wolfe", max_eval=9, lr=0.5),
    "loose-tolerances": dict(line_search_fn="strong_wolfe", tolerance_grad=1e-3, tolerance_change=1e-4),
}


def _one_group(make):
    # torch's LBFGS takes one parameter group; the harness offers two
    return lambda groups: make([p for g in groups for p in g["params"]])


@pytest.mark.parametrize("kwargs", PARITY_CASES.values(), ids=PARITY_CASES.keys())
def test_matches_torch_lbfgs_over_twenty_steps(kwargs):
    ours = parity.trajectory(_one_group(lambda ps: LBFGS(ps, **kwargs)), steps=20, closure=True)
    torchs = parity.trajectory(_one_group(lambda ps: torch.optim.LBFGS(ps, **kwargs)), steps=20, closure=True)
    assert (torchs[-1][0] - torchs[0][0]).abs().max() > 1e-3  # the run moved
    parity.assert_same(ours, torchs, 1e-10, "LBFGS vs torch.optim.LBFGS")


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


ROSENBROCK_CASES = {
    "2d-fixed-step": (2, dict(lr=0.02), False),
    "2d-strong-wolfe": (2, dict(line_search_fn="strong_wolfe", tolerance_change=1e-14), True),
    "10d-strong-wolfe": (10, dict(line_search_fn="strong_wolfe", history_size=10, tolerance_change=1e-14), True),
}


@pytest.mark.parametrize("dim, kwargs, converges", ROSENBROCK_CASES.values(), ids=ROSENBROCK_CASES.keys())
def test_rosenbrock_matches_torch_and_finds_the_minimum(dim, kwargs, converges):
    start = torch.tensor([-1.2, 1.0] * (dim // 2), dtype=torch.float64)

    def run(cls):
        x = start.clone().requires_grad_(True)
        opt = cls([x], **kwargs)

        def closure():
            opt.zero_grad()
            loss = rosenbrock(x)
            loss.backward()
            return loss

        path = []
        for _ in range(20):
            opt.step(closure)
            path.append([x.detach().clone()])
        return path

    ours, torchs = run(LBFGS), run(torch.optim.LBFGS)
    parity.assert_same(ours, torchs, 1e-10, "Rosenbrock")
    if converges:  # the minimum of Rosenbrock's function is at (1, ..., 1)
        torch.testing.assert_close(ours[-1][0], torch.ones(dim, dtype=torch.float64), rtol=0, atol=1e-6)


@pytest.mark.parametrize("source, target", [(torch.optim.LBFGS, LBFGS), (LBFGS, torch.optim.LBFGS)])
def test_state_dict_moves_between_torch_and_ours(source, target):
    kwargs = dict(line_search_fn="strong_wolfe", history_size=5, max_iter=4)
    make = _one_group(lambda ps: source(ps, **kwargs))
    _, opt, params = parity.trajectory(make, steps=3, closure=True, return_opt=True)
    saved = copy.deepcopy(opt.state_dict())  # the running optimizer mutates its state in place

    # reference: the same optimizer continues
    expected = parity.continue_run(opt, params, 4, start=3, closure=True)

    _, _, params2 = parity.trajectory(make, steps=3, closure=True, return_opt=True)
    resumed = target(params2, **kwargs)
    resumed.load_state_dict(saved)
    got = parity.continue_run(resumed, params2, 4, start=3, closure=True)
    parity.assert_same(got, expected, 1e-10, f"{source.__module__} -> {target.__module__}")


INVALID = {
    "lr": dict(lr=-1.0),
    "max_iter": dict(max_iter=0),
    "max_eval": dict(max_eval=0),
    "tolerance_grad": dict(tolerance_grad=-1e-3),
    "tolerance_change": dict(tolerance_change=-1e-3),
    "history_size": dict(history_size=0),
    "line_search_fn": dict(line_search_fn="armijo"),
}


@pytest.mark.parametrize("name, kwargs", INVALID.items(), ids=INVALID.keys())
def test_rejects_invalid_hyperparameters_naming_them(name, kwargs):
    with pytest.raises(ValueError, match=name):
        LBFGS([torch.zeros(2, requires_grad=True)], **kwargs)


def test_refuses_parameter_groups_and_a_missing_closure():
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="parameter groups"):
        LBFGS([{"params": [a]}, {"params": [b], "lr": 0.1}])
    with pytest.raises(ValueError, match="closure"):
        LBFGS([a]).step(None)
