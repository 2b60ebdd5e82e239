"""StepStats: the gradient norm and update ratio equal their definitions computed independently,
on the flat-buffer path and the per-tensor path, and the flat path survives backward passes."""

import pytest
import torch

from worker.engine.step_stats import StepStats


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))


@pytest.mark.parametrize("flat", [True, False])
def test_norms_match_their_definitions_over_several_steps(flat):
    model = _model()
    params = list(model.parameters())
    stats = StepStats(params, flat=flat)
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)  # torch's own: an independent updater
    for step in range(4):
        x = torch.randn(16, 5, generator=torch.Generator().manual_seed(step))
        model(x).pow(2).mean().backward()
        expected_grad = torch.cat([p.grad.reshape(-1) for p in params]).norm()
        before = torch.cat([p.detach().reshape(-1) for p in params]).clone()
        assert stats.grad_sq().sqrt().item() == pytest.approx(expected_grad.item(), rel=1e-5)
        stats.snapshot()
        opt.step()
        after = torch.cat([p.detach().reshape(-1) for p in params])
        expected_ratio = (after - before).norm() / before.norm()
        update_sq, weight_sq = stats.update_sq()
        assert (update_sq / weight_sq).sqrt().item() == pytest.approx(expected_ratio.item(), rel=1e-4)
        stats.zero_grad(opt)
    if flat:  # still views of the buffers after backward, steps and zeroing
        assert all(p.grad.data_ptr() >= stats.grads.data_ptr() for p in params)
        assert stats.weights.data_ptr() == params[0].data_ptr()


def test_mixed_dtypes_take_the_per_tensor_path():
    model = _model()
    model[2].double()
    stats = StepStats(list(model.parameters()), flat=True)
    assert not stats.flat
