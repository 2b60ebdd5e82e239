"""Adadelta against torch.optim.Adadelta, against itself (foreach vs loop, checkpoints) and by hand."""

import copy
import inspect
import itertools

import pytest
import torch

from optim.adadelta import Adadelta
from tests.optim.parity import assert_same, continue_run, resume, trajectory

GROUP2 = {"lr": 0.5, "rho": 0.95, "eps": 1e-5}
PARITY_CASES = [
    pytest.param(
        {"lr": 1.0, "rho": rho, "weight_decay": wd, "maximize": maximize},
        foreach,
        id=f"rho{rho}-wd{wd}-max{maximize}-foreach{foreach}",
    )
    for rho, wd, maximize, foreach in itertools.product((0.9, 0.5), (0.0, 0.1), (False, True), (False, True))
]


def _run(cls, kwargs, group2=GROUP2, steps=50):
    return trajectory(lambda groups: cls(groups, **kwargs), steps, group2=group2)


@pytest.mark.parametrize("kwargs, foreach", PARITY_CASES)
def test_matches_torch(kwargs, foreach):
    ours = _run(Adadelta, {**kwargs, "foreach": foreach})
    theirs = _run(torch.optim.Adadelta, {**kwargs, "foreach": foreach})
    assert_same(ours, theirs, 1e-10, "Adadelta vs torch.optim.Adadelta")


@pytest.mark.parametrize("kwargs, foreach", [c for c in PARITY_CASES if c.values[1]])
def test_foreach_equals_single_tensor(kwargs, foreach):
    multi = _run(Adadelta, {**kwargs, "foreach": True})
    single = _run(Adadelta, {**kwargs, "foreach": False})
    assert_same(multi, single, 1e-12, "foreach vs single-tensor")


@pytest.mark.parametrize("split", [5, 20])
@pytest.mark.parametrize("foreach", [False, True])
def test_state_dict_resume_is_seamless(split, foreach):
    def make(groups):
        return Adadelta(groups, weight_decay=0.01, foreach=foreach)

    whole = trajectory(make, 40, group2=GROUP2)
    head, opt, params = trajectory(make, split, group2=GROUP2, return_opt=True)
    tail = resume(make, params, copy.deepcopy(opt.state_dict()), split, 40 - split, GROUP2)
    assert_same(head + tail, whole, 0.0, "resumed vs uninterrupted")


def test_loads_torch_state_dict_and_continues_like_torch():
    kwargs = {"rho": 0.8, "weight_decay": 0.01}
    _, torch_opt, params = trajectory(
        lambda g: torch.optim.Adadelta(g, **kwargs), 15, group2=GROUP2, return_opt=True
    )
    sd = copy.deepcopy(torch_opt.state_dict())
    ours = resume(lambda g: Adadelta(g, **kwargs), params, sd, 15, 30, GROUP2)
    theirs = continue_run(torch_opt, params, 30, 15)
    assert_same(ours, theirs, 1e-10, "ours resumed from torch's state vs torch")
    assert set(sd["state"][0]) == {"step", "square_avg", "acc_delta"}


def test_state_layout_matches_torch():
    ours, theirs = (
        trajectory(lambda g, c=cls: c(g), 3, group2=GROUP2, return_opt=True)[1].state_dict()["state"]
        for cls in (Adadelta, torch.optim.Adadelta)
    )
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert ours[key].keys() == theirs[key].keys()
        for name, value in theirs[key].items():
            assert ours[key][name].dtype == value.dtype, name
            torch.testing.assert_close(ours[key][name], value, rtol=1e-12, atol=0)


def test_first_two_steps_closed_form():
    # Zeiler's recursion by hand on ||theta - c||^2 (gradient 2 (theta - c))
    theta, c, lr, rho, eps = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), 0.25, 0.7, 0.9, 1e-6
    p = theta.clone().requires_grad_(True)
    opt = Adadelta([p], lr=lr, rho=rho, eps=eps)
    v = u = torch.zeros(3, dtype=torch.float64)
    for _ in range(2):
        opt.zero_grad()
        ((p - c) ** 2).sum().backward()
        opt.step()
        g = 2 * (theta - c)
        v = rho * v + (1 - rho) * g**2
        dx = (u + eps).sqrt() / (v + eps).sqrt() * g
        u = rho * u + (1 - rho) * dx**2
        theta = theta - lr * dx
        torch.testing.assert_close(p.detach(), theta, rtol=1e-14, atol=0)


@pytest.mark.parametrize("foreach", [False, True])
def test_complex_parameters_match_torch(foreach):
    def run(cls):
        p = torch.tensor([1 + 2j, -0.5 + 0.1j], dtype=torch.complex128, requires_grad=True)
        opt = cls([p], weight_decay=0.01, foreach=foreach)
        out = []
        for _ in range(10):
            opt.zero_grad()
            (p - (0.3 - 0.2j)).abs().pow(2).sum().backward()
            opt.step()
            out.append([torch.view_as_real(p.detach()).clone()])
        return out

    assert_same(run(Adadelta), run(torch.optim.Adadelta), 1e-12, "complex Adadelta")


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"lr": -1e-3}, "lr"),
        ({"lr": torch.tensor([0.1, 0.2])}, "lr"),
        ({"rho": -0.1}, "rho"),
        ({"rho": 1.01}, "rho"),
        ({"eps": -1e-6}, "eps"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"capturable": True}, "capturable"),
        ({"differentiable": True}, "differentiable"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        Adadelta([torch.zeros(2, requires_grad=True)], **kwargs)


def test_signature_matches_torch():
    def shape(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert shape(Adadelta.__init__) == shape(torch.optim.Adadelta.__init__)
