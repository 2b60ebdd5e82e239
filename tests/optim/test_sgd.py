"""SGD on the seed's worked example.  Against torch.optim.SGD (every momentum variant and flag,
checkpoints, sparse gradients) in test_torch_parity.py."""

import pytest
import torch

from optim.sgd import SGD


def test_seed_worked_example_gradient_descent():
    # f(x) = x^2 - 4x + 3, x1 = 0, lr = 0.3: x2 = 1.2, x3 = 1.68, and x -> 2 (the minimiser)
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = SGD([x], lr=0.3)
    seen = []
    for _ in range(60):
        opt.zero_grad()
        (x**2 - 4 * x + 3).sum().backward()
        opt.step()
        seen.append(x.item())
    assert seen[:2] == pytest.approx([1.2, 1.68], abs=1e-15)
    # closed form: x_k - 2 = (1 - 2 lr)^k (x_0 - 2)
    assert seen[59] == pytest.approx(2 - 2 * 0.4**60, abs=1e-15)
