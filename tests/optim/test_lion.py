"""Lion's sign update by hand (Chen et al., 2023); the whole algorithm against its transcription
is in test_paper_parity.py."""

import torch

from optim import Lion


def test_every_coordinate_moves_by_exactly_lr():
    # The sign update: from zero momentum the first step is -lr * sign(g), whatever |g| is.
    p = torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([1e-6, -50.0, 0.0, 3.0], dtype=torch.float64)
    Lion([p], lr=0.25).step()
    assert torch.equal(p.detach(), torch.tensor([0.75, -1.75, 3.0, 0.25], dtype=torch.float64))
