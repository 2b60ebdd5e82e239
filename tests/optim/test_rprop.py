"""Rprop's step sizes by hand: geometric growth while the sign holds, a halving and a rest on a
flip.  Against torch.optim.Rprop (every flag combination, checkpoints, state layout, complex
parameters) in test_torch_parity.py."""

import pytest
import torch

from optim.rprop import Rprop


@pytest.mark.parametrize("foreach", [False, True])
def test_steps_grow_geometrically_while_the_sign_holds_and_shrink_on_a_flip(foreach):
    # f(theta) = c . theta has a constant gradient: steps lr, lr*eta+, lr*eta+^2 ... capped at max
    lr, etaplus, cap = 0.01, 1.5, 0.05
    c = torch.tensor([2.0, -3.0], dtype=torch.float64)
    p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = Rprop([p], lr=lr, etas=(0.5, etaplus), step_sizes=(1e-6, cap), foreach=foreach)
    travelled = 0.0
    for t in range(8):
        opt.zero_grad()
        (c * p).sum().backward()
        opt.step()
        travelled += min(lr * etaplus**t, cap)
        torch.testing.assert_close(p.detach(), -c.sign() * travelled, rtol=1e-14, atol=0)
    # flip the gradient: the step size halves and the coordinate rests for one step
    before = p.detach().clone()
    opt.zero_grad()
    (-c * p).sum().backward()
    opt.step()
    assert torch.equal(p.detach(), before)
    torch.testing.assert_close(opt.state[p]["step_size"], torch.full_like(p, cap * 0.5), rtol=1e-14, atol=0)
