"""On convex problems the second-order solvers reach scipy.optimize's optimum, and Newton's error
squares from step to step."""

import functools

import numpy as np
import pytest
import scipy.optimize
import torch
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from optim import BFGS, LBFGS, HessianFree, Newton

L2 = 1e-2


def least_squares():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(60, 12, generator=g, dtype=torch.float64)
    b = torch.randn(60, generator=g, dtype=torch.float64)
    return 12, lambda w: 0.5 * ((a @ w - b) ** 2).mean()


def logistic_regression():
    x, y = load_breast_cancer(return_X_y=True)
    x = torch.tensor(StandardScaler().fit_transform(x))
    y = torch.tensor(y, dtype=torch.float64)

    def loss(w):  # bias last, not regularised
        return F.binary_cross_entropy_with_logits(x @ w[:-1] + w[-1], y) + 0.5 * L2 * w[:-1].pow(2).sum()

    return x.shape[1] + 1, loss


PROBLEMS = {"least-squares": least_squares, "logistic-regression": logistic_regression}


@functools.cache
def scipy_optimum(problem_name):
    n, loss = PROBLEMS[problem_name]()

    def value_and_grad(w):
        w = torch.tensor(w, requires_grad=True)
        value = loss(w)
        value.backward()
        return value.item(), w.grad.numpy()

    result = scipy.optimize.minimize(
        value_and_grad, np.zeros(n), jac=True, method="L-BFGS-B",
        options=dict(gtol=1e-12, ftol=1e-15, maxiter=10_000),
    )
    assert result.success, result.message
    return result.fun, torch.tensor(result.x)


def minimize(make_opt, n, loss, steps):
    w = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    opt = make_opt([w])

    def closure():
        opt.zero_grad()
        value = loss(w)
        value.backward()
        return value

    for _ in range(steps):
        opt.step(closure)
    return loss(w).item(), w.detach()


TIGHT = dict(tolerance_grad=1e-12, tolerance_change=1e-15)
SOLVERS = {
    "lbfgs": (lambda ps: LBFGS(ps, line_search_fn="strong_wolfe", max_iter=50, **TIGHT), 3),
    "bfgs": (lambda ps: BFGS(ps, max_iter=50, **TIGHT), 4),
    "newton": (lambda ps: Newton(ps), 10),
    "hessianfree": (lambda ps: HessianFree(ps, cg_tol=1e-10), 15),
}


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("make_opt, steps", SOLVERS.values(), ids=SOLVERS.keys())
def test_reaches_scipy_optimum(problem, make_opt, steps):
    n, loss = PROBLEMS[problem]()
    best, _ = scipy_optimum(problem)
    start = loss(torch.zeros(n, dtype=torch.float64)).item()
    reached, _ = minimize(make_opt, n, loss, steps)
    assert start - best > 0.1 * abs(best)  # the problem is not solved at the start
    assert abs(reached - best) <= 1e-6 * abs(best), (reached, best)


def test_newton_converges_quadratically():
    n, loss = logistic_regression()
    _, scipy_w = scipy_optimum("logistic-regression")
    w = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    opt = Newton([w], damping=1e-6)

    def closure():
        opt.zero_grad()
        value = loss(w)
        value.backward()
        return value

    iterates = [w.detach().clone()]
    for _ in range(12):
        opt.step(closure)
        iterates.append(w.detach().clone())
    limit = iterates[-1]
    torch.testing.assert_close(limit, scipy_w, rtol=0, atol=1e-5)  # the same minimizer as scipy's
    errors = [(x - limit).norm().item() for x in iterates[:-1]]
    # the pairs where the error is small enough for the local theory and large enough to measure
    pairs = [(e, e_next) for e, e_next in zip(errors, errors[1:]) if e < 1e-1 and e_next > 1e-13]
    assert len(pairs) >= 2, errors
    ratios = [e_next / e**2 for e, e_next in pairs]
    assert max(ratios) <= 10.0, (errors, ratios)  # e_{k+1} <= C e_k^2 with a moderate C (measured ~0.6)
    linear = [e_next / e for e, e_next in pairs]
    assert min(linear) < 1e-3, linear  # and far faster than any linear rate
