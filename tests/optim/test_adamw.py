"""AdamW against Adam(decoupled_weight_decay=True), against the paper's decoupled decay, and
after loading a coupled checkpoint.  Against torch.optim.AdamW in test_torch_parity.py."""

import pickle

import pytest
import torch

from optim.adam import Adam, AdamW
from tests.optim.mirrors import BY_NAME
from tests.optim.parity import assert_same, trajectory


@pytest.mark.parametrize("kwargs, group2", BY_NAME["AdamW"].cases[:4])
def test_is_adam_with_decoupled_weight_decay(kwargs, group2):
    adamw = trajectory(lambda g: AdamW(g, **kwargs), 50, group2=group2)
    adam = trajectory(lambda g: Adam(g, **kwargs, decoupled_weight_decay=True), 50, group2=group2)
    assert_same(adamw, adam, 0.0)


def test_zero_gradient_step_is_pure_decay():
    """Loshchilov & Hutter, Alg. 2: with g = 0 the moments stay 0, so the weights only shrink by lr * lambda."""
    theta0 = torch.tensor([1.0, -3.0, 0.25], dtype=torch.float64)
    theta = theta0.clone().requires_grad_(True)
    opt = AdamW([theta], lr=0.1, weight_decay=0.2)
    for _ in range(3):
        theta.grad = torch.zeros_like(theta)
        opt.step()
    torch.testing.assert_close(theta.detach(), theta0 * (1 - 0.1 * 0.2) ** 3, rtol=1e-15, atol=0)


def test_stays_decoupled_after_loading_a_coupled_checkpoint():
    """Like torch, AdamW forces decoupled decay even when the loaded param_groups say otherwise."""
    p = torch.ones(3, requires_grad=True)
    state = Adam([p], weight_decay=0.1).state_dict()
    opt = AdamW([p])
    opt.load_state_dict(state)
    assert all(g["decoupled_weight_decay"] for g in opt.param_groups)
    assert pickle.loads(pickle.dumps(opt)).param_groups[0]["decoupled_weight_decay"] is True
