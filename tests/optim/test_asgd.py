"""ASGD's averaged weights against a direct mean of the trajectory, swapping them in and out, and
torch's foreach path where its scalars are float64.  Against torch.optim.ASGD (every flag
combination, checkpoints with their averages, state layout, complex parameters) in
test_torch_parity.py."""

import pytest
import torch

from optim.asgd import ASGD
from tests.optim.mirrors import BY_NAME
from tests.optim.parity import NO_GRAD_STEP, assert_same, trajectory


@pytest.mark.parametrize("kwargs, group2", BY_NAME["ASGD"].cases)
def test_foreach_matches_torch_foreach_with_float64_scalars(kwargs, group2, float64_default):
    ours = trajectory(lambda g: ASGD(g, **kwargs, foreach=True), 50, group2=group2)
    theirs = trajectory(lambda g: torch.optim.ASGD(g, **kwargs, foreach=True), 50, group2=group2)
    assert_same(ours, theirs, 1e-10, "ASGD foreach vs torch.optim.ASGD foreach")


@pytest.mark.parametrize("t0", [0, 10, 1e6])
@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("scalar_dtype", [torch.float32, torch.float64])
def test_averaged_parameters_are_the_mean_of_iterates_after_t0(t0, foreach, scalar_dtype):
    # torch's update: ax_t = theta_t while t <= t0 + 1, then the mean of theta_{t0+2} .. theta_t.
    # mu = 1/k is kept in the scalar dtype (float32 unless the default dtype is float64), which
    # bounds how close the running average can come to the exact mean.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(scalar_dtype)
    try:
        history, opt, params = trajectory(
            lambda g: ASGD(g, lr=0.05, t0=t0, foreach=foreach), 40, group2={"t0": t0}, return_opt=True
        )
    finally:
        torch.set_default_dtype(previous)
    rtol = 1e-12 if scalar_dtype == torch.float64 else 1e-6
    for i, average in enumerate(opt.averaged_parameters()):
        # the last parameter had no gradient at NO_GRAD_STEP, so it has one update fewer
        own = [h[i] for k, h in enumerate(history) if not (i == len(params) - 1 and k == NO_GRAD_STEP)]
        start = int(min(t0 + 1, len(own) - 1))
        expected = torch.stack(own[start:]).mean(0)
        torch.testing.assert_close(average, expected, rtol=rtol, atol=rtol * 1e-2)


def test_swap_averaged_evaluates_with_averages_and_restores():
    _, opt, params = trajectory(lambda g: ASGD(g, lr=0.05, t0=5), 20, return_opt=True)
    current = [p.detach().clone() for p in params]
    averages = [a.clone() for a in opt.averaged_parameters()]
    assert any(not torch.equal(a, c) for a, c in zip(averages, current))
    with opt.swap_averaged():
        for p, a in zip(params, averages):
            assert torch.equal(p, a)
    for p, c in zip(params, current):
        assert torch.equal(p, c)


def test_averaged_parameters_of_unstepped_parameter_is_itself():
    p = torch.ones(3, requires_grad=True)
    assert torch.equal(ASGD([p]).averaged_parameters()[0], p.detach())
