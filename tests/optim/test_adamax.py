"""Adamax's first two steps in closed form (Kingma & Ba, Alg. 2).  Against torch.optim.Adamax
(every flag combination, checkpoints, state layout, complex parameters) in test_torch_parity.py."""

import torch

from optim.adamax import Adamax


def test_first_two_steps_closed_form():
    """Paper, Alg. 2: u_1 = |g_1| + eps, m_1 = (1 - b1) g_1, so step 1 moves by -lr g/(|g| + eps);
    step 2 with u_2 = max(b2 u_1, |g_2| + eps) and m_2 = b1 m_1 + (1 - b1) g_2."""
    lr, (b1, b2), eps = 0.1, (0.9, 0.5), 1e-8
    g1 = torch.tensor([0.3, -2.0, 1e-3, 0.0], dtype=torch.float64)
    g2 = torch.tensor([-0.1, -0.5, 2.0, 0.0], dtype=torch.float64)
    theta0 = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    theta = theta0.clone().requires_grad_(True)
    opt = Adamax([theta], lr=lr, betas=(b1, b2), eps=eps)

    theta.grad = g1.clone()
    opt.step()
    theta1 = theta0 - lr * g1 / (g1.abs() + eps)
    torch.testing.assert_close(theta.detach(), theta1, rtol=1e-14, atol=1e-15)

    theta.grad = g2.clone()
    opt.step()
    u2 = torch.maximum(b2 * (g1.abs() + eps), g2.abs() + eps)
    m2 = b1 * (1 - b1) * g1 + (1 - b1) * g2
    torch.testing.assert_close(theta.detach(), theta1 - lr / (1 - b1**2) * m2 / u2, rtol=1e-14, atol=1e-15)
