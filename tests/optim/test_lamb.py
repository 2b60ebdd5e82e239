"""LAMB's trust ratio by hand (You et al., 2019); the whole algorithm against its transcription is
in test_paper_parity.py."""

import pytest
import torch

from optim import LAMB


@pytest.mark.parametrize("foreach", [False, True])
def test_trust_ratio_is_one_for_a_zero_layer(foreach):
    # ||w|| = 0: no rescaling, so the first step is the bias-corrected Adam direction
    # m_hat / (sqrt(v_hat) + eps) = g / (|g| + eps), times lr.
    lr, eps = 0.1, 1e-6
    g = torch.tensor([2.0, -0.5, 0.0], dtype=torch.float64)
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    p.grad = g.clone()
    LAMB([p], lr=lr, eps=eps, foreach=foreach).step()
    torch.testing.assert_close(p.detach(), -lr * g / (g.abs() + eps), rtol=1e-15, atol=0)


@pytest.mark.parametrize("foreach", [False, True])
def test_step_length_is_lr_times_weight_norm(foreach):
    # The trust ratio makes every layer's step lr * ||w|| long, whatever the gradient's scale.
    p = torch.tensor([[3.0, 4.0], [0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([[1e-3, -2e2], [5.0, 0.1]], dtype=torch.float64)
    before = p.detach().clone()
    LAMB([p], lr=0.01, weight_decay=0.3, foreach=foreach).step()
    torch.testing.assert_close(torch.linalg.vector_norm(p.detach() - before).item(), 0.01 * 5.0, rtol=1e-14, atol=0)
