"""RAdam against torch.optim.RAdam (every flag combination, both sides of the rectification
threshold), against itself (foreach vs loop, checkpoints), against the paper's formulas, and its
hyperparameter checks."""

import copy
import inspect
import itertools
import math

import pytest
import torch

from optim.radam import RAdam
from tests.optim.parity import assert_same, continue_run, resume, trajectory

# Second group: beta2 = 0.95 rectifies from step 6 on; beta2 = 0.6 gives rho_inf = 4, never rectified.
GROUP2_CASES = {
    "rectifying": {"lr": 0.03, "betas": (0.8, 0.95), "eps": 1e-6},
    "never-rectified": {"lr": 0.02, "betas": (0.9, 0.6)},
}
FLAG_CASES = [
    pytest.param(
        {"lr": 0.01, "weight_decay": wd, "maximize": maximize, "decoupled_weight_decay": dec},
        GROUP2_CASES[g2],
        id=f"wd{wd}-max{maximize}-dec{dec}-{g2}",
    )
    for wd, maximize, dec, g2 in itertools.product((0.0, 0.1), (False, True), (False, True), GROUP2_CASES)
]


def _run(cls, kwargs, group2, steps=50):
    return trajectory(lambda groups: cls(groups, **kwargs), steps, group2=group2)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("kwargs, group2", FLAG_CASES)
def test_matches_torch(kwargs, group2, foreach):
    ours = _run(RAdam, {**kwargs, "foreach": foreach}, group2)
    theirs = _run(torch.optim.RAdam, {**kwargs, "foreach": foreach}, group2)
    assert_same(ours, theirs, 1e-10, "RAdam vs torch.optim.RAdam")


@pytest.mark.parametrize("kwargs, group2", FLAG_CASES)
def test_foreach_equals_single_tensor(kwargs, group2):
    multi = _run(RAdam, {**kwargs, "foreach": True}, group2)
    single = _run(RAdam, {**kwargs, "foreach": False}, group2)
    assert_same(multi, single, 1e-12, "foreach vs single-tensor")


@pytest.mark.parametrize("foreach", [False, True])
def test_complex_parameters_match_torch(foreach):
    g = torch.Generator().manual_seed(3)
    start = [torch.randn(s, dtype=torch.complex128, generator=g) for s in [(4, 3), (5,)]]

    def run(cls):
        params = [p.clone().requires_grad_(True) for p in start]
        opt = cls(params, lr=0.05, betas=(0.9, 0.9), weight_decay=0.1, foreach=foreach)
        for _ in range(20):
            opt.zero_grad()
            sum(((p - 1j).abs() ** 2).sum() for p in params).backward()
            opt.step()
        return [[p.detach().clone() for p in params]]

    assert_same(run(RAdam), run(torch.optim.RAdam), 1e-10, "complex RAdam vs torch")


def test_signature_matches_torch():
    def signature(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls.__init__).parameters.values()]

    assert signature(RAdam) == signature(torch.optim.RAdam)


def _rho(t, beta2):
    rho_inf = 2 / (1 - beta2) - 1
    return rho_inf, rho_inf - 2 * t * beta2**t / (1 - beta2**t)


@pytest.mark.parametrize("foreach", [False, True])
def test_rectification_switches_on_after_rho_exceeds_five(foreach):
    """Liu et al., Alg. 2, with a constant gradient g: m_hat = g and sqrt(v_t) = sqrt(1 - b2^t) |g|.

    beta2 = 0.9: rho_5 = 4.58 (> 4, the paper's bound, but not > 5) and rho_6 = 5.39, so steps 1-5
    move by -lr g and step 6 by -lr r_6 sqrt(1 - b2^6) g / (sqrt(1 - b2^6) |g| + eps)."""
    lr, b1, b2, eps = 0.1, 0.8, 0.9, 1e-8
    assert 4 < _rho(5, b2)[1] < 5 < _rho(6, b2)[1]
    g = torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64)
    theta0 = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    theta = theta0.clone().requires_grad_(True)
    opt = RAdam([theta], lr=lr, betas=(b1, b2), eps=eps, foreach=foreach)
    for _ in range(6):
        theta.grad = g.clone()
        opt.step()

    rho_inf, rho_6 = _rho(6, b2)
    r_6 = math.sqrt((rho_6 - 4) * (rho_6 - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_6))
    l_6 = math.sqrt(1 - b2**6) / (math.sqrt(1 - b2**6) * g.abs() + eps)
    expected = theta0 - 5 * lr * g - lr * r_6 * l_6 * g
    torch.testing.assert_close(theta.detach(), expected, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("split", [3, 20])
@pytest.mark.parametrize("foreach", [False, True])
def test_state_dict_resume_is_seamless(split, foreach):
    group2 = GROUP2_CASES["rectifying"]

    def make(groups):
        return RAdam(groups, lr=0.01, weight_decay=0.01, foreach=foreach)

    whole = trajectory(make, 40, group2=group2)
    head, opt, params = trajectory(make, split, group2=group2, return_opt=True)
    tail = resume(make, params, copy.deepcopy(opt.state_dict()), split, 40 - split, group2)
    assert_same(head + tail, whole, 0.0, "resumed vs uninterrupted")


@pytest.mark.parametrize("source, target", [(torch.optim.RAdam, RAdam), (RAdam, torch.optim.RAdam)])
def test_state_dict_interchanges_with_torch(source, target):
    group2 = GROUP2_CASES["rectifying"]
    kwargs = {"lr": 0.01, "weight_decay": 0.01, "decoupled_weight_decay": True}
    _, src_opt, params = trajectory(lambda g: source(g, **kwargs), 4, group2=group2, return_opt=True)
    other = resume(lambda g: target(g, **kwargs), params, copy.deepcopy(src_opt.state_dict()), 4, 30, group2)
    assert_same(other, continue_run(src_opt, params, 30, 4), 1e-10, "continuing the other's checkpoint")


def test_state_layout_matches_torch():
    group2 = GROUP2_CASES["rectifying"]
    _, ours, _ = trajectory(lambda g: RAdam(g, lr=0.01), 10, group2=group2, return_opt=True)
    _, theirs, _ = trajectory(lambda g: torch.optim.RAdam(g, lr=0.01), 10, group2=group2, return_opt=True)
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
        ({"betas": (0.9, 1.0)}, r"betas\[1\]"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"capturable": True}, "capturable"),
        ({"differentiable": True}, "differentiable"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        RAdam([torch.zeros(2, requires_grad=True)], **kwargs)
