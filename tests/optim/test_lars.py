"""LARS by hand (You et al., 2017): the local rate's step length, a zero layer, an lr change;
the whole algorithm against its transcription is in test_paper_parity.py."""

import pytest
import torch

from optim import LARS
from tests.optim.parity import assert_same, lr_scaled_midway
from tests.optim.references import LARS_DEFAULTS, ReferenceLARS


@pytest.mark.parametrize("foreach", [False, True])
def test_lr_change_reaches_only_new_momentum_contributions(foreach):
    # The momentum accumulates lr * local * (g + beta w): an lr change (a scheduler) does not rescale v.
    kwargs = dict(lr=5.0, weight_decay=1e-3)
    ours = lr_scaled_midway(lambda g: LARS(g, foreach=foreach, **kwargs))
    reference = lr_scaled_midway(lambda g: ReferenceLARS(g, **{**LARS_DEFAULTS, **kwargs}))
    assert_same(ours, reference, 1e-10, "after an lr change")


@pytest.mark.parametrize("foreach", [False, True])
def test_first_step_length_is_eta_lr_times_weight_norm(foreach):
    # Without weight decay and eps the local rate makes the step eta * lr * ||w|| long, whatever ||g||.
    p = torch.tensor([[3.0, 4.0], [0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([[1e-3, -2e2], [5.0, 0.1]], dtype=torch.float64)
    before = p.detach().clone()
    LARS([p], lr=2.0, trust_coefficient=0.01, eps=0.0, foreach=foreach).step()
    torch.testing.assert_close(torch.linalg.vector_norm(p.detach() - before).item(), 2.0 * 0.01 * 5.0, rtol=1e-14, atol=0)


@pytest.mark.parametrize("foreach", [False, True])
def test_zero_layer_takes_a_plain_sgd_step(foreach):
    p = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64)
    LARS([p], lr=0.1, foreach=foreach).step()
    torch.testing.assert_close(p.detach(), -0.1 * p.grad, rtol=1e-15, atol=0)
