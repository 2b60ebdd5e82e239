"""Adamax against torch.optim.Adamax, against itself (foreach vs loop, checkpoints), against its
closed-form first step, and its hyperparameter checks."""

import copy
import inspect
import itertools

import pytest
import torch

from optim.adamax import Adamax
from tests.optim.parity import assert_same, continue_run, resume, trajectory

GROUP2 = {"lr": 0.03, "betas": (0.8, 0.95), "eps": 1e-6}
FLAG_CASES = [
    pytest.param({"lr": 0.01, "weight_decay": wd, "maximize": maximize}, id=f"wd{wd}-max{maximize}")
    for wd, maximize in itertools.product((0.0, 0.1), (False, True))
]


def _run(cls, kwargs, steps=50):
    return trajectory(lambda groups: cls(groups, **kwargs), steps, group2=GROUP2)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("kwargs", FLAG_CASES)
def test_matches_torch(kwargs, foreach):
    ours = _run(Adamax, {**kwargs, "foreach": foreach})
    theirs = _run(torch.optim.Adamax, {**kwargs, "foreach": foreach})
    assert_same(ours, theirs, 1e-10, "Adamax vs torch.optim.Adamax")


@pytest.mark.parametrize("kwargs", FLAG_CASES)
def test_foreach_equals_single_tensor(kwargs):
    assert_same(_run(Adamax, {**kwargs, "foreach": True}), _run(Adamax, {**kwargs, "foreach": False}), 1e-12)


@pytest.mark.parametrize("foreach", [False, True])
def test_complex_parameters_match_torch(foreach):
    g = torch.Generator().manual_seed(3)
    start = [torch.randn(s, dtype=torch.complex128, generator=g) for s in [(4, 3), (5,)]]

    def run(cls):
        params = [p.clone().requires_grad_(True) for p in start]
        opt = cls(params, lr=0.05, weight_decay=0.1, foreach=foreach)
        for _ in range(20):
            opt.zero_grad()
            sum(((p - 1j).abs() ** 2).sum() for p in params).backward()
            opt.step()
        return [[p.detach().clone() for p in params]]

    assert_same(run(Adamax), run(torch.optim.Adamax), 1e-10, "complex Adamax vs torch")


def test_signature_matches_torch():
    def signature(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls.__init__).parameters.values()]

    assert signature(Adamax) == signature(torch.optim.Adamax)


def test_first_two_steps_closed_form():
    """Paper, Alg. 2: u_1 = |g_1| + eps, m_1 = (1 - b1) g_1, so step 1 moves by -lr g/(|g| + eps);
    step 2 with u_2 = max(b2 u_1, |g_2| + eps) and m_2 = b1 m_1 + (1 - b1) g_2."""
    lr, (b1, b2), eps = 0.1, (0.9, 0.5), 1e-8
    g1 = torch.tensor([0.3, -2.0, 1e-3, 0.0], dtype=torch.float64)
    g2 = torch.tensor([-0.1, -0.5, 2.0, 0.0], dtype=torch.float64)
    theta0 = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    theta = theta0.clone().requires_grad_(True)
    opt = Adamax([theta], lr=lr, betas=(b1, b2), eps=eps)

    theta.grad = g1.clone()
    opt.step()
    theta1 = theta0 - lr * g1 / (g1.abs() + eps)
    torch.testing.assert_close(theta.detach(), theta1, rtol=1e-14, atol=1e-15)

    theta.grad = g2.clone()
    opt.step()
    u2 = torch.maximum(b2 * (g1.abs() + eps), g2.abs() + eps)
    m2 = b1 * (1 - b1) * g1 + (1 - b1) * g2
    torch.testing.assert_close(theta.detach(), theta1 - lr / (1 - b1**2) * m2 / u2, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("split", [5, 20])
@pytest.mark.parametrize("foreach", [False, True])
def test_state_dict_resume_is_seamless(split, foreach):
    def make(groups):
        return Adamax(groups, lr=0.01, weight_decay=0.01, foreach=foreach)

    whole = trajectory(make, 40, group2=GROUP2)
    head, opt, params = trajectory(make, split, group2=GROUP2, return_opt=True)
    tail = resume(make, params, copy.deepcopy(opt.state_dict()), split, 40 - split, GROUP2)
    assert_same(head + tail, whole, 0.0, "resumed vs uninterrupted")


@pytest.mark.parametrize("source, target", [(torch.optim.Adamax, Adamax), (Adamax, torch.optim.Adamax)])
def test_state_dict_interchanges_with_torch(source, target):
    kwargs = {"lr": 0.01, "weight_decay": 0.01}
    _, src_opt, params = trajectory(lambda g: source(g, **kwargs), 15, group2=GROUP2, return_opt=True)
    other = resume(lambda g: target(g, **kwargs), params, copy.deepcopy(src_opt.state_dict()), 15, 30, GROUP2)
    assert_same(other, continue_run(src_opt, params, 30, 15), 1e-10, "continuing the other's checkpoint")


def test_state_layout_matches_torch():
    _, ours, _ = trajectory(lambda g: Adamax(g, lr=0.01), 10, group2=GROUP2, return_opt=True)
    _, theirs, _ = trajectory(lambda g: torch.optim.Adamax(g, lr=0.01), 10, group2=GROUP2, return_opt=True)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert [sorted(g) for g in ours_sd["param_groups"]] == [sorted(g) for g in theirs_sd["param_groups"]]
    for pid, their_state in theirs_sd["state"].items():
        assert {k: (v.dtype, v.shape) for k, v in ours_sd["state"][pid].items()} == {
            k: (v.dtype, v.shape) for k, v in their_state.items()
        }


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"lr": -1e-3}, "lr"),
        ({"eps": -1e-8}, "eps"),
        ({"betas": (1.0, 0.999)}, r"betas\[0\]"),
        ({"betas": (0.9, -0.5)}, r"betas\[1\]"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"capturable": True}, "capturable"),
        ({"differentiable": True}, "differentiable"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Adamax([torch.zeros(2, requires_grad=True)], **kwargs)
