"""Adagrad's first step by hand, and a group's own initial_accumulator_value.  Against
torch.optim.Adagrad (every flag combination, checkpoints, state layout, complex and sparse
parameters) in test_torch_parity.py."""

import torch

from optim.adagrad import Adagrad
from tests.optim.parity import assert_same, trajectory


def test_group_initial_accumulator_value_is_honoured():
    # torch reads only the constructor's value; a group's own value must behave like it
    ours = trajectory(
        lambda g: Adagrad([{**g[0], "initial_accumulator_value": 0.3}, g[1]], lr=0.1),
        30, group2={"initial_accumulator_value": 0.3},
    )
    theirs = trajectory(lambda g: torch.optim.Adagrad(g, lr=0.1, initial_accumulator_value=0.3), 30)
    assert_same(ours, theirs, 1e-10, "group-level initial_accumulator_value")


def test_first_step_closed_form():
    # s1 = tau + g^2, theta1 = theta0 - lr g / (sqrt(s1) + eps); g = 2 (theta0 - c) for ||theta - c||^2
    theta0, c, lr, tau, eps = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), 0.25, 0.1, 0.2, 1e-10
    p = theta0.clone().requires_grad_(True)
    opt = Adagrad([p], lr=lr, initial_accumulator_value=tau, eps=eps)
    ((p - c) ** 2).sum().backward()
    opt.step()
    g = 2 * (theta0 - c)
    torch.testing.assert_close(p.detach(), theta0 - lr * g / ((tau + g**2).sqrt() + eps), rtol=1e-15, atol=0)
