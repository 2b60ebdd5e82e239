"""BFGS: the inverse-Hessian update is the textbook formula, and the solver minimizes quadratics
and Rosenbrock's function to their known minimizers."""

import pytest
import torch

from optim import BFGS
from optim.bfgs import bfgs_update
from tests.optim.test_lbfgs import rosenbrock


def _random_spd(n, seed):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=torch.float64)
    return m @ m.T + n * torch.eye(n, dtype=torch.float64)


def _pair(n, seed):
    g = torch.Generator().manual_seed(100 + seed)
    s = torch.randn(n, generator=g, dtype=torch.float64)
    # y = A s for an SPD A, so y^T s > 0 (a curvature pair from a convex function)
    return s, _random_spd(n, seed + 7) @ s


@pytest.mark.parametrize("n, seed", [(3, 0), (8, 1), (20, 2)])
def test_update_is_the_product_form_and_satisfies_the_secant_equation(n, seed):
    h = torch.linalg.inv(_random_spd(n, seed))
    s, y = _pair(n, seed)
    rho = 1.0 / y.dot(s)
    eye = torch.eye(n, dtype=torch.float64)
    textbook = (eye - rho * torch.outer(s, y)) @ h @ (eye - rho * torch.outer(y, s)) + rho * torch.outer(s, s)
    updated = bfgs_update(h.clone(), s, y)
    torch.testing.assert_close(updated, textbook, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(updated @ y, s, rtol=1e-10, atol=1e-12)  # H_{k+1} y = s
    assert torch.linalg.eigvalsh(updated).min() > 0


def test_first_update_scales_the_identity_and_skips_negative_curvature():
    s, y = _pair(5, 3)
    first = bfgs_update(None, s, y)
    scaled = torch.eye(5, dtype=torch.float64) * (y.dot(s) / y.dot(y))
    torch.testing.assert_close(first, bfgs_update(scaled, s, y), rtol=1e-14, atol=0)
    h = torch.eye(5, dtype=torch.float64)
    assert bfgs_update(h, s, -y) is h  # y^T s < 0: H must stay positive definite


QUADRATIC_CASES = {"strong-wolfe": dict(), "fixed-step": dict(line_search_fn=None, lr=0.05, max_iter=100)}


@pytest.mark.parametrize("kwargs", QUADRATIC_CASES.values(), ids=QUADRATIC_CASES.keys())
def test_minimizes_a_quadratic_to_its_closed_form_minimizer(kwargs):
    n = 10
    a = _random_spd(n, 4)
    b = torch.randn(n, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    x = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    opt = BFGS([x], tolerance_grad=1e-12, tolerance_change=0.0, **kwargs)

    def closure():
        opt.zero_grad()
        loss = 0.5 * x @ a @ x - b @ x
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    # a line search on loss values resolves x only to about sqrt(machine epsilon) of the loss scale
    torch.testing.assert_close(x.detach(), torch.linalg.solve(a, b), rtol=1e-6, atol=1e-8)


def test_rosenbrock_reaches_the_minimum_at_ones():
    x = torch.tensor([-1.2, 1.0, -1.2, 1.0], dtype=torch.float64, requires_grad=True)
    opt = BFGS([x], max_iter=100, tolerance_change=1e-15)

    def closure():
        opt.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    torch.testing.assert_close(x.detach(), torch.ones(4, dtype=torch.float64), rtol=0, atol=1e-6)


def test_state_dict_resumes_exactly():
    def run(steps, saved=None):
        x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
        opt = BFGS([x], max_iter=3)
        if saved is not None:
            x.data.copy_(saved[0])
            opt.load_state_dict(saved[1])

        def closure():
            opt.zero_grad()
            loss = rosenbrock(x)
            loss.backward()
            return loss

        for _ in range(steps):
            opt.step(closure)
        return x.detach().clone(), opt.state_dict()

    straight, _ = run(6)
    halfway = run(3)
    resumed, _ = run(3, saved=(halfway[0], halfway[1]))
    assert torch.equal(resumed, straight)


INVALID = {
    "lr": dict(lr=-1.0),
    "max_iter": dict(max_iter=0),
    "max_eval": dict(max_eval=0),
    "tolerance_grad": dict(tolerance_grad=-1.0),
    "tolerance_change": dict(tolerance_change=-1.0),
    "line_search_fn": dict(line_search_fn="backtracking"),
    "max_params": dict(max_params=0),
}


@pytest.mark.parametrize("name, kwargs", INVALID.items(), ids=INVALID.keys())
def test_rejects_invalid_hyperparameters_naming_them(name, kwargs):
    with pytest.raises(ValueError, match=name):
        BFGS([torch.zeros(2, requires_grad=True)], **kwargs)


def test_refuses_models_above_max_params():
    with pytest.raises(ValueError, match="max_params"):
        BFGS([torch.zeros(30, 30, requires_grad=True)], max_params=500)
    BFGS([torch.zeros(20, 25, requires_grad=True)], max_params=500)
