"""Adadelta's recursion by hand (Zeiler).  Against torch.optim.Adadelta (every flag combination,
checkpoints, state layout, complex parameters) in test_torch_parity.py."""

import torch

from optim.adadelta import Adadelta


def test_first_two_steps_closed_form():
    # Zeiler's recursion by hand on ||theta - c||^2 (gradient 2 (theta - c))
    theta, c, lr, rho, eps = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), 0.25, 0.7, 0.9, 1e-6
    p = theta.clone().requires_grad_(True)
    opt = Adadelta([p], lr=lr, rho=rho, eps=eps)
    v = u = torch.zeros(3, dtype=torch.float64)
    for _ in range(2):
        opt.zero_grad()
        ((p - c) ** 2).sum().backward()
        opt.step()
        g = 2 * (theta - c)
        v = rho * v + (1 - rho) * g**2
        dx = (u + eps).sqrt() / (v + eps).sqrt() * g
        u = rho * u + (1 - rho) * dx**2
        theta = theta - lr * dx
        torch.testing.assert_close(p.detach(), theta, rtol=1e-14, atol=0)
