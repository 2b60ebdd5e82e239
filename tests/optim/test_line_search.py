"""The strong-Wolfe line search's cubic step against torch's own ``_cubic_interpolate``, bit for
bit, with the same mix of Python numbers and 0-d tensors torch feeds it.  A step length off by
one last bit grows into a different L-BFGS run within a few iterations, so equal is the bar."""

from __future__ import annotations

import random

import pytest
import torch
from torch.optim.lbfgs import _cubic_interpolate, _strong_wolfe

from optim.line_search import cubic_minimizer, strong_wolfe


def _as(kind: str, value: float):
    return torch.tensor(value, dtype=torch.float64) if kind == "tensor" else value


@pytest.mark.parametrize("t_kind", ["float", "tensor"])
@pytest.mark.parametrize("bounded", [False, True])
def test_cubic_step_equals_torch_bit_for_bit(t_kind, bounded):
    rng = random.Random(0)
    for _ in range(2000):
        t1, t2 = 0.0, rng.uniform(1e-3, 2.0)
        if rng.random() < 0.5:
            t1, t2 = t2, rng.uniform(1e-3, 2.0)
        f1, f2 = rng.uniform(-3, 3), rng.uniform(-3, 3)
        g1, g2 = (torch.tensor(rng.uniform(-3, 3), dtype=torch.float64) for _ in range(2))
        bounds = (max(t1, t2) * 1.01, max(t1, t2) * 10) if bounded else None
        args = (_as(t_kind, t1), f1, g1, _as(t_kind, t2), f2, g2)
        ours = cubic_minimizer(*args, bounds=bounds)
        theirs = _cubic_interpolate(*args, bounds=bounds)
        assert float(ours) == float(theirs), (args, bounds)


def _rosenbrock(x: torch.Tensor) -> tuple[float, torch.Tensor]:
    x = x.detach().requires_grad_(True)
    loss = (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()
    loss.backward()
    return float(loss.detach()), x.grad


def test_search_takes_torchs_steps_bit_for_bit():
    """Whole searches along random descent directions on Rosenbrock: the same accepted step,
    loss and evaluation count as torch's ``_strong_wolfe`` (a search that turned its slopes into
    floats drifts from torch in a few cases in a hundred)."""
    g = torch.Generator().manual_seed(0)
    for case in range(1000):
        x0 = torch.randn(6, generator=g, dtype=torch.float64)
        f0, g0 = _rosenbrock(x0)
        d = -g0 * torch.rand(6, generator=g, dtype=torch.float64)
        t0 = min(1.0, 1.0 / g0.abs().sum()) * (0.3, 1, 3, 10, 30)[case % 5]  # short and long first trials
        gtd = g0.dot(d)
        ours = strong_wolfe(lambda t, x0=x0, d=d: _rosenbrock(x0 + t * d), d, t0, f0, g0, gtd)
        theirs = _strong_wolfe(lambda x, t, d: _rosenbrock(x + t * d), x0, t0, d, f0, g0, gtd)
        assert (ours[0], float(ours[2]), ours[3]) == (theirs[0], float(theirs[2]), theirs[3]), case
        assert torch.equal(ours[1], theirs[1])
