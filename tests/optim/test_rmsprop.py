"""RMSprop against torch.optim.RMSprop, against itself (foreach vs loop, checkpoints) and by hand."""

import copy
import inspect
import itertools

import pytest
import torch

from optim.rmsprop import RMSprop
from tests.optim.parity import assert_same, continue_run, resume, trajectory

# the second group adds momentum where the first has none, and changes it where it has some
GROUP2 = {"lr": 0.005, "alpha": 0.9, "eps": 1e-6, "momentum": 0.5}
PARITY_CASES = [
    pytest.param(
        {"lr": 0.01, "weight_decay": wd, "maximize": maximize, "momentum": momentum, "centered": centered},
        foreach,
        id=f"wd{wd}-max{maximize}-mom{momentum}-centered{centered}-foreach{foreach}",
    )
    for wd, maximize, momentum, centered, foreach in itertools.product(
        (0.0, 0.1), (False, True), (0.0, 0.9), (False, True), (False, True)
    )
]


def _run(cls, kwargs, group2=GROUP2, steps=50):
    return trajectory(lambda groups: cls(groups, **kwargs), steps, group2=group2)


@pytest.mark.parametrize("kwargs, foreach", PARITY_CASES)
def test_matches_torch(kwargs, foreach):
    ours = _run(RMSprop, {**kwargs, "foreach": foreach})
    theirs = _run(torch.optim.RMSprop, {**kwargs, "foreach": foreach})
    assert_same(ours, theirs, 1e-10, "RMSprop vs torch.optim.RMSprop")


@pytest.mark.parametrize("kwargs, foreach", [c for c in PARITY_CASES if c.values[1]])
def test_foreach_equals_single_tensor(kwargs, foreach):
    multi = _run(RMSprop, {**kwargs, "foreach": True})
    single = _run(RMSprop, {**kwargs, "foreach": False})
    assert_same(multi, single, 1e-12, "foreach vs single-tensor")


@pytest.mark.parametrize("split", [5, 20])
@pytest.mark.parametrize("foreach", [False, True])
def test_state_dict_resume_is_seamless(split, foreach):
    def make(groups):
        return RMSprop(groups, lr=0.01, momentum=0.9, centered=True, weight_decay=0.01, foreach=foreach)

    whole = trajectory(make, 40, group2=GROUP2)
    head, opt, params = trajectory(make, split, group2=GROUP2, return_opt=True)
    tail = resume(make, params, copy.deepcopy(opt.state_dict()), split, 40 - split, GROUP2)
    assert_same(head + tail, whole, 0.0, "resumed vs uninterrupted")


def test_loads_torch_state_dict_and_continues_like_torch():
    kwargs = {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.01}
    _, torch_opt, params = trajectory(
        lambda g: torch.optim.RMSprop(g, **kwargs), 15, group2=GROUP2, return_opt=True
    )
    sd = copy.deepcopy(torch_opt.state_dict())
    ours = resume(lambda g: RMSprop(g, **kwargs), params, sd, 15, 30, GROUP2)
    theirs = continue_run(torch_opt, params, 30, 15)
    assert_same(ours, theirs, 1e-10, "ours resumed from torch's state vs torch")
    assert set(sd["state"][0]) == {"step", "square_avg", "momentum_buffer", "grad_avg"}


@pytest.mark.parametrize("kwargs", [{}, {"momentum": 0.9}, {"centered": True}])
def test_state_layout_matches_torch(kwargs):
    ours, theirs = (
        trajectory(lambda g, c=cls: c(g, **kwargs), 4, group2={}, return_opt=True)[1].state_dict()["state"]
        for cls in (RMSprop, torch.optim.RMSprop)
    )
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert ours[key].keys() == theirs[key].keys()
        for name, value in theirs[key].items():
            assert ours[key][name].dtype == value.dtype, name
            torch.testing.assert_close(ours[key][name], value, rtol=1e-12, atol=0)


def test_centered_momentum_two_steps_closed_form():
    # the recursions by hand on ||theta - c||^2 (gradient 2 (theta - c))
    theta, c = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), 0.25
    lr, alpha, eps, mu = 0.01, 0.9, 1e-8, 0.8
    p = theta.clone().requires_grad_(True)
    opt = RMSprop([p], lr=lr, alpha=alpha, eps=eps, momentum=mu, centered=True)
    v = gbar = b = torch.zeros(3, dtype=torch.float64)
    for _ in range(2):
        opt.zero_grad()
        ((p - c) ** 2).sum().backward()
        opt.step()
        g = 2 * (theta - c)
        v = alpha * v + (1 - alpha) * g**2
        gbar = alpha * gbar + (1 - alpha) * g
        b = mu * b + g / ((v - gbar**2).sqrt() + eps)
        theta = theta - lr * b
        torch.testing.assert_close(p.detach(), theta, rtol=1e-14, atol=0)


def test_momentum_switched_on_later_starts_from_zero_buffer():
    p = torch.ones(2, dtype=torch.float64, requires_grad=True)
    opt = RMSprop([p], lr=0.1)
    p.grad = torch.ones_like(p)
    opt.step()
    opt.param_groups[0]["momentum"] = 0.5
    opt.step()
    # alpha = 0.99, g = 1: v1 = 0.01, v2 = 0.99 v1 + 0.01; b2 = 0.5 * 0 + g / (sqrt(v2) + eps)
    p1 = 1 - 0.1 / (0.01**0.5 + 1e-8)
    b2 = 1 / ((0.99 * 0.01 + 0.01) ** 0.5 + 1e-8)
    torch.testing.assert_close(opt.state[p]["momentum_buffer"], torch.full_like(p, b2), rtol=1e-14, atol=0)
    torch.testing.assert_close(p.detach(), torch.full_like(p, p1 - 0.1 * b2), rtol=1e-14, atol=0)


@pytest.mark.parametrize("foreach", [False, True])
def test_complex_parameters_match_torch(foreach):
    def run(cls):
        p = torch.tensor([1 + 2j, -0.5 + 0.1j], dtype=torch.complex128, requires_grad=True)
        opt = cls([p], lr=0.05, momentum=0.5, centered=True, foreach=foreach)
        out = []
        for _ in range(10):
            opt.zero_grad()
            (p - (0.3 - 0.2j)).abs().pow(2).sum().backward()
            opt.step()
            out.append([torch.view_as_real(p.detach()).clone()])
        return out

    assert_same(run(RMSprop), run(torch.optim.RMSprop), 1e-12, "complex RMSprop")


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"lr": -1e-3}, "lr"),
        ({"lr": torch.tensor([0.1, 0.2])}, "lr"),
        ({"alpha": -0.1}, "alpha"),
        ({"alpha": 1.1}, "alpha"),
        ({"eps": -1e-8}, "eps"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"momentum": -0.1}, "momentum"),
        ({"capturable": True}, "capturable"),
        ({"differentiable": True}, "differentiable"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        RMSprop([torch.zeros(2, requires_grad=True)], **kwargs)


def test_signature_matches_torch():
    def shape(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert shape(RMSprop.__init__) == shape(torch.optim.RMSprop.__init__)
