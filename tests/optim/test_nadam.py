"""NAdam's first step in closed form (Dozat), and torch continuing our checkpoint.  Against
torch.optim.NAdam (every flag combination, checkpoints, state layout, complex parameters) in
test_torch_parity.py."""

import copy

import pytest
import torch

from optim.nadam import NAdam
from tests.optim.mirrors import NADAM_CHECKPOINT as KWARGS
from tests.optim.mirrors import NADAM_GROUP2 as GROUP2
from tests.optim.parity import assert_same, resume, trajectory


def test_first_step_closed_form(float64_default):
    """Dozat's update at t = 1: mu_1, mu_2 from the schedule, m_1 = (1 - b1) g, v_hat = g^2, and
    m_hat = mu_2 m_1 / (1 - mu_1 mu_2) + (1 - mu_1) g / (1 - mu_1)."""
    lr, (b1, b2), eps, psi = 0.1, (0.9, 0.99), 1e-8, 0.3
    g = torch.tensor([0.3, -2.0, 1e-3, 0.0])
    theta0 = torch.tensor([1.0, 2.0, 3.0, 4.0])
    theta = theta0.clone().requires_grad_(True)
    theta.grad = g.clone()
    opt = NAdam([theta], lr=lr, betas=(b1, b2), eps=eps, momentum_decay=psi)
    opt.step()

    mu1 = b1 * (1 - 0.5 * 0.96 ** (1 * psi))
    mu2 = b1 * (1 - 0.5 * 0.96 ** (2 * psi))
    m_hat = mu2 * (1 - b1) * g / (1 - mu1 * mu2) + (1 - mu1) * g / (1 - mu1)
    torch.testing.assert_close(theta.detach(), theta0 - lr * m_hat / (g.abs() + eps), rtol=1e-14, atol=1e-15)
    assert opt.state[theta]["mu_product"].item() == pytest.approx(mu1, rel=1e-15)
    assert opt.state[theta]["mu_product"].dtype == torch.float64


def _checkpoint(cls, steps=3):
    _, opt, params = trajectory(lambda g: cls(g, **KWARGS), steps, group2=GROUP2, return_opt=True)
    return opt, params, copy.deepcopy(opt.state_dict())


def test_torch_continues_our_checkpoint_as_its_own():
    """torch's load casts mu_product to the parameters' float64 (so torch drifts ~1e-8 from its own
    uninterrupted run here); the oracle is torch resuming its own checkpoint."""
    _, our_params, our_state = _checkpoint(NAdam)
    _, torch_params, torch_state = _checkpoint(torch.optim.NAdam)

    def make(g):
        return torch.optim.NAdam(g, **KWARGS)

    from_ours = resume(make, our_params, our_state, 3, 30, GROUP2)
    from_torch = resume(make, torch_params, torch_state, 3, 30, GROUP2)
    assert_same(from_ours, from_torch, 1e-10, "torch continuing our checkpoint vs its own")
