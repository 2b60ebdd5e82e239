"""RMSprop's centered momentum recursion by hand, and momentum switched on mid-run.  Against
torch.optim.RMSprop (every flag combination, checkpoints, state layout, complex parameters) in
test_torch_parity.py."""

import torch

from optim.rmsprop import RMSprop


def test_centered_momentum_two_steps_closed_form():
    # the recursions by hand on ||theta - c||^2 (gradient 2 (theta - c))
    theta, c = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), 0.25
    lr, alpha, eps, mu = 0.01, 0.9, 1e-8, 0.8
    p = theta.clone().requires_grad_(True)
    opt = RMSprop([p], lr=lr, alpha=alpha, eps=eps, momentum=mu, centered=True)
    v = gbar = b = torch.zeros(3, dtype=torch.float64)
    for _ in range(2):
        opt.zero_grad()
        ((p - c) ** 2).sum().backward()
        opt.step()
        g = 2 * (theta - c)
        v = alpha * v + (1 - alpha) * g**2
        gbar = alpha * gbar + (1 - alpha) * g
        b = mu * b + g / ((v - gbar**2).sqrt() + eps)
        theta = theta - lr * b
        torch.testing.assert_close(p.detach(), theta, rtol=1e-14, atol=0)


def test_momentum_switched_on_later_starts_from_zero_buffer():
    p = torch.ones(2, dtype=torch.float64, requires_grad=True)
    opt = RMSprop([p], lr=0.1)
    p.grad = torch.ones_like(p)
    opt.step()
    opt.param_groups[0]["momentum"] = 0.5
    opt.step()
    # alpha = 0.99, g = 1: v1 = 0.01, v2 = 0.99 v1 + 0.01; b2 = 0.5 * 0 + g / (sqrt(v2) + eps)
    p1 = 1 - 0.1 / (0.01**0.5 + 1e-8)
    b2 = 1 / ((0.99 * 0.01 + 0.01) ** 0.5 + 1e-8)
    torch.testing.assert_close(opt.state[p]["momentum_buffer"], torch.full_like(p, b2), rtol=1e-14, atol=0)
    torch.testing.assert_close(p.detach(), torch.full_like(p, p1 - 0.1 * b2), rtol=1e-14, atol=0)
