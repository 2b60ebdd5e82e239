"""Adagrad against torch.optim.Adagrad, against itself (foreach vs loop, checkpoints) and by hand."""

import copy
import inspect
import itertools

import pytest
import torch

from optim.adagrad import Adagrad
from tests.optim.parity import assert_same, continue_run, resume, trajectory

GROUP2 = {"lr": 0.05, "eps": 1e-6, "weight_decay": 0.02}
PARITY_CASES = [
    pytest.param(
        {"lr": 0.1, "weight_decay": wd, "maximize": maximize, "lr_decay": lr_decay,
         "initial_accumulator_value": init},
        foreach,
        id=f"wd{wd}-max{maximize}-decay{lr_decay}-init{init}-foreach{foreach}",
    )
    for wd, maximize, lr_decay, init, foreach in itertools.product(
        (0.0, 0.1), (False, True), (0.0, 0.01), (0.0, 0.1), (False, True)
    )
]


def _run(cls, kwargs, group2=GROUP2, steps=50):
    return trajectory(lambda groups: cls(groups, **kwargs), steps, group2=group2)


@pytest.mark.parametrize("kwargs, foreach", PARITY_CASES)
def test_matches_torch(kwargs, foreach):
    ours = _run(Adagrad, {**kwargs, "foreach": foreach})
    theirs = _run(torch.optim.Adagrad, {**kwargs, "foreach": foreach})
    assert_same(ours, theirs, 1e-10, "Adagrad vs torch.optim.Adagrad")


@pytest.mark.parametrize("kwargs, foreach", [c for c in PARITY_CASES if c.values[1]])
def test_foreach_equals_single_tensor(kwargs, foreach):
    multi = _run(Adagrad, {**kwargs, "foreach": True})
    single = _run(Adagrad, {**kwargs, "foreach": False})
    assert_same(multi, single, 1e-12, "foreach vs single-tensor")


def test_group_initial_accumulator_value_is_honoured():
    # torch reads only the constructor's value; a group's own value must behave like it
    ours = trajectory(
        lambda g: Adagrad([{**g[0], "initial_accumulator_value": 0.3}, g[1]], lr=0.1),
        30, group2={"initial_accumulator_value": 0.3},
    )
    theirs = trajectory(lambda g: torch.optim.Adagrad(g, lr=0.1, initial_accumulator_value=0.3), 30)
    assert_same(ours, theirs, 1e-10, "group-level initial_accumulator_value")


@pytest.mark.parametrize("split", [5, 20])
@pytest.mark.parametrize("foreach", [False, True])
def test_state_dict_resume_is_seamless(split, foreach):
    def make(groups):
        return Adagrad(groups, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, foreach=foreach)

    whole = trajectory(make, 40, group2=GROUP2)
    head, opt, params = trajectory(make, split, group2=GROUP2, return_opt=True)
    tail = resume(make, params, copy.deepcopy(opt.state_dict()), split, 40 - split, GROUP2)
    assert_same(head + tail, whole, 0.0, "resumed vs uninterrupted")


def test_loads_torch_state_dict_and_continues_like_torch():
    kwargs = {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.01}
    _, torch_opt, params = trajectory(
        lambda g: torch.optim.Adagrad(g, **kwargs), 15, group2=GROUP2, return_opt=True
    )
    sd = copy.deepcopy(torch_opt.state_dict())
    ours = resume(lambda g: Adagrad(g, **kwargs), params, sd, 15, 30, GROUP2)
    theirs = continue_run(torch_opt, params, 30, 15)
    assert_same(ours, theirs, 1e-10, "ours resumed from torch's state vs torch")
    assert set(sd["state"][0]) == {"step", "sum"}


def test_state_layout_matches_torch():
    ours, theirs = (
        trajectory(lambda g, c=cls: c(g, lr=0.1), 3, group2=GROUP2, return_opt=True)[1].state_dict()["state"]
        for cls in (Adagrad, torch.optim.Adagrad)
    )
    for key in theirs:
        for name, value in theirs[key].items():
            assert ours[key][name].dtype == value.dtype and ours[key][name].shape == value.shape, name
            torch.testing.assert_close(ours[key][name], value, rtol=1e-12, atol=0)


def test_first_step_closed_form():
    # s1 = tau + g^2, theta1 = theta0 - lr g / (sqrt(s1) + eps); g = 2 (theta0 - c) for ||theta - c||^2
    theta0, c, lr, tau, eps = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), 0.25, 0.1, 0.2, 1e-10
    p = theta0.clone().requires_grad_(True)
    opt = Adagrad([p], lr=lr, initial_accumulator_value=tau, eps=eps)
    ((p - c) ** 2).sum().backward()
    opt.step()
    g = 2 * (theta0 - c)
    torch.testing.assert_close(p.detach(), theta0 - lr * g / ((tau + g**2).sqrt() + eps), rtol=1e-15, atol=0)


def test_sparse_gradient_matches_torch():
    def run(cls):
        torch.manual_seed(0)
        emb = torch.nn.Embedding(10, 3, sparse=True).double()
        opt = cls(emb.parameters(), lr=0.1, lr_decay=0.01)
        for step in range(5):
            opt.zero_grad()
            emb(torch.tensor([step, step + 1, 3, 3])).pow(2).sum().backward()
            opt.step()
        return [[emb.weight.detach().clone()]]

    assert_same(run(Adagrad), run(torch.optim.Adagrad), 1e-12, "sparse Adagrad")


@pytest.mark.parametrize("foreach", [False, True])
def test_complex_parameters_match_torch(foreach):
    def run(cls):
        p = torch.tensor([1 + 2j, -0.5 + 0.1j], dtype=torch.complex128, requires_grad=True)
        opt = cls([p], lr=0.1, weight_decay=0.01, foreach=foreach)
        out = []
        for _ in range(10):
            opt.zero_grad()
            (p - (0.3 - 0.2j)).abs().pow(2).sum().backward()
            opt.step()
            out.append([torch.view_as_real(p.detach()).clone()])
        return out

    assert_same(run(Adagrad), run(torch.optim.Adagrad), 1e-12, "complex Adagrad")


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"lr": -1e-3}, "lr"),
        ({"lr": torch.tensor([0.1, 0.2])}, "lr"),
        ({"lr_decay": -0.1}, "lr_decay"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"initial_accumulator_value": -0.1}, "initial_accumulator_value"),
        ({"eps": -1e-10}, "eps"),
        ({"differentiable": True}, "differentiable"),
        ({"fused": True}, "fused"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        Adagrad([torch.zeros(2, requires_grad=True)], **kwargs)


def test_signature_matches_torch():
    def shape(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert shape(Adagrad.__init__) == shape(torch.optim.Adagrad.__init__)
