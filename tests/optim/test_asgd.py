"""ASGD against torch.optim.ASGD, its averaged weights against a direct mean of the trajectory."""

import copy
import inspect
import itertools

import pytest
import torch

from optim.asgd import ASGD
from tests.optim.parity import NO_GRAD_STEP, assert_same, continue_run, resume, trajectory

GROUP2 = {"lr": 0.02, "lambd": 1e-3, "t0": 5}
PARITY_CASES = [
    pytest.param(
        {"lr": 0.05, "lambd": 0.01, "alpha": alpha, "t0": t0, "weight_decay": wd, "maximize": maximize},
        foreach,
        id=f"alpha{alpha}-t0{t0}-wd{wd}-max{maximize}-foreach{foreach}",
    )
    for (alpha, t0), wd, maximize, foreach in itertools.product(
        ((0.75, 10), (0.5, 1e6)), (0.0, 0.1), (False, True), (False, True)
    )
]


def _run(cls, kwargs, group2=GROUP2, steps=50):
    return trajectory(lambda groups: cls(groups, **kwargs), steps, group2=group2)


# torch's own foreach path computes the next eta in tensor arithmetic in the scalar dtype
# (float32 unless the default dtype is float64), so it drifts from torch's single-tensor path by
# ~1e-5 relative over 50 steps.  Both of our paths compute eta in float64 like torch's single-tensor
# path, which is therefore the reference; torch's foreach path is matched where its scalars are
# float64 too.
@pytest.mark.parametrize("kwargs, foreach", PARITY_CASES)
def test_matches_torch(kwargs, foreach):
    ours = _run(ASGD, {**kwargs, "foreach": foreach})
    theirs = _run(torch.optim.ASGD, {**kwargs, "foreach": False})
    assert_same(ours, theirs, 1e-10, "ASGD vs torch.optim.ASGD")


@pytest.fixture
def float64_default():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("kwargs, foreach", [c for c in PARITY_CASES if c.values[1]])
def test_foreach_matches_torch_foreach_with_float64_scalars(kwargs, foreach, float64_default):
    ours = _run(ASGD, {**kwargs, "foreach": True})
    theirs = _run(torch.optim.ASGD, {**kwargs, "foreach": True})
    assert_same(ours, theirs, 1e-10, "ASGD foreach vs torch.optim.ASGD foreach")


@pytest.mark.parametrize("kwargs, foreach", [c for c in PARITY_CASES if c.values[1]])
def test_foreach_equals_single_tensor(kwargs, foreach):
    multi = _run(ASGD, {**kwargs, "foreach": True})
    single = _run(ASGD, {**kwargs, "foreach": False})
    # the foreach path folds the shrinkage into the gradient step: same math, other rounding
    assert_same(multi, single, 1e-12, "foreach vs single-tensor")


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


@pytest.mark.parametrize("split", [5, 20])
@pytest.mark.parametrize("foreach", [False, True])
def test_state_dict_resume_is_seamless(split, foreach):
    def make(groups):
        return ASGD(groups, lr=0.05, lambd=0.01, t0=3, foreach=foreach)

    whole, whole_opt, _ = trajectory(make, 40, group2=GROUP2, return_opt=True)
    head, opt, params = trajectory(make, split, group2=GROUP2, return_opt=True)
    tail, resumed = resume(make, params, copy.deepcopy(opt.state_dict()), split, 40 - split, GROUP2, return_opt=True)
    assert_same(head + tail, whole, 0.0, "resumed vs uninterrupted")
    assert_same([resumed.averaged_parameters()], [whole_opt.averaged_parameters()], 0.0, "averages")


def test_loads_torch_state_dict_and_continues_like_torch():
    kwargs = {"lr": 0.05, "lambd": 0.01, "t0": 3, "weight_decay": 0.01}
    _, torch_opt, params = trajectory(lambda g: torch.optim.ASGD(g, **kwargs), 15, group2=GROUP2, return_opt=True)
    sd = copy.deepcopy(torch_opt.state_dict())
    ours, opt = resume(lambda g: ASGD(g, **kwargs), params, sd, 15, 30, GROUP2, return_opt=True)
    theirs = continue_run(torch_opt, params, 30, 15)
    assert_same(ours, theirs, 1e-10, "ours resumed from torch's state vs torch")
    torch_axs = [torch_opt.state[p]["ax"] for g in torch_opt.param_groups for p in g["params"]]
    assert_same([opt.averaged_parameters()], [torch_axs], 1e-10, "averages")
    assert set(sd["state"][0]) == {"step", "eta", "mu", "ax"}


def test_state_layout_matches_torch():
    ours, theirs = (
        trajectory(lambda g, c=cls: c(g, t0=1), 4, group2=GROUP2, return_opt=True)[1].state_dict()["state"]
        for cls in (ASGD, torch.optim.ASGD)
    )
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert ours[key].keys() == theirs[key].keys()
        for name, value in theirs[key].items():
            assert ours[key][name].dtype == value.dtype, name
            torch.testing.assert_close(ours[key][name], value, rtol=1e-12, atol=0)


@pytest.mark.parametrize("foreach", [False, True])
def test_complex_parameters_match_torch(foreach):
    def run(cls, foreach):
        p = torch.tensor([1 + 2j, -0.5 + 0.1j], dtype=torch.complex128, requires_grad=True)
        opt = cls([p], lr=0.05, t0=3, weight_decay=0.01, foreach=foreach)
        out = []
        for _ in range(10):
            opt.zero_grad()
            (p - (0.3 - 0.2j)).abs().pow(2).sum().backward()
            opt.step()
            out.append([torch.view_as_real(p.detach()).clone(), torch.view_as_real(opt.state[p]["ax"]).clone()])
        return out

    # torch's single-tensor path is the reference (see test_matches_torch)
    assert_same(run(ASGD, foreach), run(torch.optim.ASGD, False), 1e-12, "complex ASGD")


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"lr": -1e-3}, "lr"),
        ({"lr": torch.tensor([0.1, 0.2])}, "lr"),
        ({"lambd": -1e-4}, "lambd"),
        ({"alpha": -0.5}, "alpha"),
        ({"t0": -1.0}, "t0"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"differentiable": True}, "differentiable"),
        ({"capturable": True}, "capturable"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        ASGD([torch.zeros(2, requires_grad=True)], **kwargs)


def test_signature_matches_torch():
    def shape(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert shape(ASGD.__init__) == shape(torch.optim.ASGD.__init__)
