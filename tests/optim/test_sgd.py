"""SGD against torch.optim.SGD, against itself (foreach vs loop, checkpoints) and by hand."""

import copy
import inspect
import itertools

import pytest
import torch

from optim.sgd import SGD
from tests.optim.parity import assert_same, continue_run, resume, trajectory

MOMENTUM_VARIANTS = {
    "plain": ({}, {}),
    "momentum": ({"momentum": 0.9}, {"momentum": 0.5}),
    "dampening": ({"momentum": 0.9, "dampening": 0.3}, {"dampening": 0.6}),
    "nesterov": ({"momentum": 0.9, "nesterov": True}, {"momentum": 0.7}),
}
PARITY_CASES = [
    pytest.param(
        {"lr": 0.05, "weight_decay": wd, "maximize": maximize, **variant[0]},
        {"lr": 0.02, **variant[1]},
        foreach,
        id=f"{name}-wd{wd}-max{maximize}-foreach{foreach}",
    )
    for (name, variant), wd, maximize, foreach in itertools.product(
        MOMENTUM_VARIANTS.items(), (0.0, 0.1), (False, True), (False, True)
    )
]


def _run(cls, kwargs, group2, steps=50):
    return trajectory(lambda groups: cls(groups, **kwargs), steps, group2=group2)


@pytest.mark.parametrize("kwargs, group2, foreach", PARITY_CASES)
def test_matches_torch(kwargs, group2, foreach):
    ours = _run(SGD, {**kwargs, "foreach": foreach}, group2)
    theirs = _run(torch.optim.SGD, {**kwargs, "foreach": foreach}, group2)
    assert_same(ours, theirs, 1e-10, "SGD vs torch.optim.SGD")


@pytest.mark.parametrize("kwargs, group2, foreach", [c for c in PARITY_CASES if c.values[2]])
def test_foreach_equals_single_tensor(kwargs, group2, foreach):
    multi = _run(SGD, {**kwargs, "foreach": True}, group2)
    single = _run(SGD, {**kwargs, "foreach": False}, group2)
    assert_same(multi, single, 1e-12, "foreach vs single-tensor")


@pytest.mark.parametrize("name", ["momentum", "nesterov", "dampening"])
@pytest.mark.parametrize("split", [5, 20])
@pytest.mark.parametrize("foreach", [False, True])
def test_state_dict_resume_is_seamless(name, split, foreach):
    kwargs, group2 = MOMENTUM_VARIANTS[name]
    kwargs = {"lr": 0.05, "weight_decay": 0.01, "foreach": foreach, **kwargs}

    def make(groups):
        return SGD(groups, **kwargs)

    whole = trajectory(make, 40, group2=group2)
    head, opt, params = trajectory(make, split, group2=group2, return_opt=True)
    tail = resume(make, params, copy.deepcopy(opt.state_dict()), split, 40 - split, group2)
    assert_same(head + tail, whole, 0.0, "resumed vs uninterrupted")


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_loads_torch_state_dict_and_continues_like_torch(name):
    kwargs, group2 = MOMENTUM_VARIANTS[name]
    kwargs = {"lr": 0.05, "weight_decay": 0.01, **kwargs}
    _, torch_opt, params = trajectory(
        lambda g: torch.optim.SGD(g, **kwargs), 15, group2=group2, return_opt=True
    )
    ours = resume(lambda g: SGD(g, **kwargs), params, copy.deepcopy(torch_opt.state_dict()), 15, 30, group2)
    theirs = continue_run(torch_opt, params, 30, 15)
    assert_same(ours, theirs, 1e-10, "ours resumed from torch's state vs torch")
    assert set(torch_opt.state_dict()["state"][0]) == {"momentum_buffer"}


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


def test_sparse_gradient_matches_torch():
    def run(cls):
        torch.manual_seed(0)
        emb = torch.nn.Embedding(10, 3, sparse=True).double()
        opt = cls(emb.parameters(), lr=0.1)
        for step in range(5):
            opt.zero_grad()
            emb(torch.tensor([step, step + 1, 3])).pow(2).sum().backward()
            opt.step()
        return [[emb.weight.detach().clone()]]

    assert_same(run(SGD), run(torch.optim.SGD), 1e-12, "sparse SGD")


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"lr": -1e-3}, "lr"),
        ({"lr": torch.tensor([0.1, 0.2])}, "lr"),
        ({"momentum": -0.1}, "momentum"),
        ({"dampening": -0.1}, "dampening"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"nesterov": True}, "nesterov"),
        ({"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "nesterov"),
        ({"differentiable": True}, "differentiable"),
        ({"fused": True}, "fused"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        SGD([torch.zeros(2, requires_grad=True)], **kwargs)


def test_signature_matches_torch():
    def shape(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert shape(SGD.__init__) == shape(torch.optim.SGD.__init__)
