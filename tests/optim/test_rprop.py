"""Rprop against torch.optim.Rprop, against itself (foreach vs loop, checkpoints) and by hand."""

import copy
import inspect
import itertools

import pytest
import torch

from optim.rprop import Rprop
from tests.optim.parity import assert_same, continue_run, resume, trajectory

GROUP2 = {"lr": 0.005, "etas": (0.4, 1.3)}
PARITY_CASES = [
    pytest.param(
        {"lr": 0.01, "etas": etas, "step_sizes": step_sizes, "maximize": maximize},
        foreach,
        id=f"etas{etas}-sizes{step_sizes}-max{maximize}-foreach{foreach}",
    )
    for etas, step_sizes, maximize, foreach in itertools.product(
        # inverted step_sizes pin every step size at the max, as torch.clamp does
        ((0.5, 1.2), (0.3, 1.5)), ((1e-6, 50), (1e-3, 0.02), (0.02, 1e-3)), (False, True), (False, True)
    )
]


def _run(cls, kwargs, group2=GROUP2, steps=50):
    return trajectory(lambda groups: cls(groups, **kwargs), steps, group2=group2)


@pytest.mark.parametrize("kwargs, foreach", PARITY_CASES)
def test_matches_torch(kwargs, foreach):
    ours = _run(Rprop, {**kwargs, "foreach": foreach})
    theirs = _run(torch.optim.Rprop, {**kwargs, "foreach": foreach})
    assert_same(ours, theirs, 1e-10, "Rprop vs torch.optim.Rprop")


@pytest.mark.parametrize("kwargs, foreach", [c for c in PARITY_CASES if c.values[1]])
def test_foreach_equals_single_tensor(kwargs, foreach):
    multi = _run(Rprop, {**kwargs, "foreach": True})
    single = _run(Rprop, {**kwargs, "foreach": False})
    assert_same(multi, single, 0.0, "foreach vs single-tensor")


@pytest.mark.parametrize("split", [5, 20])
@pytest.mark.parametrize("foreach", [False, True])
def test_state_dict_resume_is_seamless(split, foreach):
    def make(groups):
        return Rprop(groups, lr=0.01, foreach=foreach)

    whole = trajectory(make, 40, group2=GROUP2)
    head, opt, params = trajectory(make, split, group2=GROUP2, return_opt=True)
    tail = resume(make, params, copy.deepcopy(opt.state_dict()), split, 40 - split, GROUP2)
    assert_same(head + tail, whole, 0.0, "resumed vs uninterrupted")


def test_loads_torch_state_dict_and_continues_like_torch():
    kwargs = {"lr": 0.01, "etas": (0.4, 1.3), "step_sizes": (1e-4, 1.0)}
    _, torch_opt, params = trajectory(lambda g: torch.optim.Rprop(g, **kwargs), 15, group2=GROUP2, return_opt=True)
    sd = copy.deepcopy(torch_opt.state_dict())
    ours = resume(lambda g: Rprop(g, **kwargs), params, sd, 15, 30, GROUP2)
    theirs = continue_run(torch_opt, params, 30, 15)
    assert_same(ours, theirs, 1e-10, "ours resumed from torch's state vs torch")
    assert set(sd["state"][0]) == {"step", "prev", "step_size"}


def test_state_layout_matches_torch():
    ours, theirs = (
        trajectory(lambda g, c=cls: c(g), 4, group2=GROUP2, return_opt=True)[1].state_dict()["state"]
        for cls in (Rprop, torch.optim.Rprop)
    )
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert ours[key].keys() == theirs[key].keys()
        for name, value in theirs[key].items():
            assert ours[key][name].dtype == value.dtype, name
            torch.testing.assert_close(ours[key][name], value, rtol=1e-12, atol=0)


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


@pytest.mark.parametrize("foreach", [False, True])
def test_complex_parameters_match_torch(foreach):
    def run(cls):
        p = torch.tensor([1 + 2j, -0.5 + 0.1j], dtype=torch.complex128, requires_grad=True)
        opt = cls([p], lr=0.05, foreach=foreach)
        out = []
        for _ in range(10):
            opt.zero_grad()
            (p - (0.3 - 0.2j)).abs().pow(2).sum().backward()
            opt.step()
            out.append([torch.view_as_real(p.detach()).clone()])
        return out

    assert_same(run(Rprop), run(torch.optim.Rprop), 1e-12, "complex Rprop")


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"lr": -1e-3}, "lr"),
        ({"lr": torch.tensor([0.1, 0.2])}, "lr"),
        ({"etas": (0.0, 1.2)}, "etas"),
        ({"etas": (1.0, 1.2)}, "etas"),
        ({"etas": (0.5, 1.0)}, "etas"),
        ({"step_sizes": (-1e-6, 50)}, "step_sizes"),
        ({"step_sizes": (1e-6, -50)}, "step_sizes"),
        ({"capturable": True}, "capturable"),
        ({"differentiable": True}, "differentiable"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        Rprop([torch.zeros(2, requires_grad=True)], **kwargs)


def test_signature_matches_torch():
    def shape(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert shape(Rprop.__init__) == shape(torch.optim.Rprop.__init__)
