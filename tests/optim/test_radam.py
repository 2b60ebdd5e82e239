"""RAdam's rectification switching on where the paper says (Liu et al., Alg. 2).  Against
torch.optim.RAdam (every flag combination on both sides of the threshold, checkpoints, state
layout, complex parameters) in test_torch_parity.py."""

import math

import pytest
import torch

from optim.radam import RAdam


def _rho(t, beta2):
    rho_inf = 2 / (1 - beta2) - 1
    return rho_inf, rho_inf - 2 * t * beta2**t / (1 - beta2**t)


@pytest.mark.parametrize("foreach", [False, True])
def test_rectification_switches_on_after_rho_exceeds_five(foreach):
    """Liu et al., Alg. 2, with a constant gradient g: m_hat = g and sqrt(v_t) = sqrt(1 - b2^t) |g|.

    beta2 = 0.9: rho_5 = 4.58 (> 4, the paper's bound, but not > 5) and rho_6 = 5.39, so steps 1-5
    move by -lr g and step 6 by -lr r_6 sqrt(1 - b2^6) g / (sqrt(1 - b2^6) |g| + eps)."""
    lr, b1, b2, eps = 0.1, 0.8, 0.9, 1e-8
    assert 4 < _rho(5, b2)[1] < 5 < _rho(6, b2)[1]
    g = torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64)
    theta0 = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    theta = theta0.clone().requires_grad_(True)
    opt = RAdam([theta], lr=lr, betas=(b1, b2), eps=eps, foreach=foreach)
    for _ in range(6):
        theta.grad = g.clone()
        opt.step()

    rho_inf, rho_6 = _rho(6, b2)
    r_6 = math.sqrt((rho_6 - 4) * (rho_6 - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_6))
    l_6 = math.sqrt(1 - b2**6) / (math.sqrt(1 - b2**6) * g.abs() + eps)
    expected = theta0 - 5 * lr * g - lr * r_6 * l_6 * g
    torch.testing.assert_close(theta.detach(), expected, rtol=1e-13, atol=1e-14)
