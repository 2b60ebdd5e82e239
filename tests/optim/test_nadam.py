"""NAdam against torch.optim.NAdam (every flag combination), against itself (foreach vs loop,
checkpoints), against its closed-form first step, and its hyperparameter checks."""

import copy
import inspect
import itertools

import pytest
import torch

from optim.nadam import NAdam
from tests.optim.parity import assert_same, continue_run, resume, trajectory

GROUP2 = {"lr": 0.03, "betas": (0.8, 0.95), "momentum_decay": 0.05}
FLAG_CASES = [
    pytest.param(
        {"lr": 0.01, "weight_decay": wd, "maximize": maximize, "decoupled_weight_decay": dec, "momentum_decay": psi},
        id=f"wd{wd}-max{maximize}-dec{dec}-psi{psi}",
    )
    for wd, maximize, dec, psi in itertools.product((0.0, 0.1), (False, True), (False, True), (4e-3, 0.5))
]


def _run(cls, kwargs, steps=50):
    return trajectory(lambda groups: cls(groups, **kwargs), steps, group2=GROUP2)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("kwargs", FLAG_CASES)
def test_matches_torch(kwargs, foreach):
    ours = _run(NAdam, {**kwargs, "foreach": foreach})
    theirs = _run(torch.optim.NAdam, {**kwargs, "foreach": foreach})
    assert_same(ours, theirs, 1e-10, "NAdam vs torch.optim.NAdam")


@pytest.mark.parametrize("kwargs", FLAG_CASES)
def test_foreach_equals_single_tensor(kwargs):
    assert_same(_run(NAdam, {**kwargs, "foreach": True}), _run(NAdam, {**kwargs, "foreach": False}), 1e-12)


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

    assert_same(run(NAdam), run(torch.optim.NAdam), 1e-10, "complex NAdam vs torch")


def test_signature_matches_torch():
    def signature(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls.__init__).parameters.values()]

    assert signature(NAdam) == signature(torch.optim.NAdam)


@pytest.fixture
def float64_default():
    """With a float64 default dtype, step and mu_product are float64 too (as in torch)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def test_first_step_closed_form(float64_default):
    """Dozat's update at t = 1: mu_1, mu_2 from the schedule, m_1 = (1 - b1) g, v_hat = g^2, and
    m_hat = mu_2 m_1 / (1 - mu_1 mu_2) + (1 - mu_1) g / (1 - mu_1)."""
    lr, (b1, b2), eps, psi = 0.1, (0.9, 0.99), 1e-8, 0.3
    g = torch.tensor([0.3, -2.0, 1e-3, 0.0])
    theta0 = torch.tensor([1.0, 2.0, 3.0, 4.0])
    theta = theta0.clone().requires_grad_(True)
    theta.grad = g.clone()
    opt = NAdam([theta], lr=lr, betas=(b1, b2), eps=eps, momentum_decay=psi)
    opt.step()

    mu1 = b1 * (1 - 0.5 * 0.96 ** (1 * psi))
    mu2 = b1 * (1 - 0.5 * 0.96 ** (2 * psi))
    m_hat = mu2 * (1 - b1) * g / (1 - mu1 * mu2) + (1 - mu1) * g / (1 - mu1)
    torch.testing.assert_close(theta.detach(), theta0 - lr * m_hat / (g.abs() + eps), rtol=1e-14, atol=1e-15)
    assert opt.state[theta]["mu_product"].item() == pytest.approx(mu1, rel=1e-15)
    assert opt.state[theta]["mu_product"].dtype == torch.float64


@pytest.mark.parametrize("split", [3, 20])
@pytest.mark.parametrize("foreach", [False, True])
def test_state_dict_resume_is_seamless(split, foreach):
    """Bit-identical: mu_product stays in its float32 counter dtype across the reload."""

    def make(groups):
        return NAdam(groups, lr=0.01, weight_decay=0.01, momentum_decay=0.5, foreach=foreach)

    whole = trajectory(make, 40, group2=GROUP2)
    head, opt, params = trajectory(make, split, group2=GROUP2, return_opt=True)
    tail = resume(make, params, copy.deepcopy(opt.state_dict()), split, 40 - split, GROUP2)
    assert_same(head + tail, whole, 0.0, "resumed vs uninterrupted")


KWARGS = {"lr": 0.01, "weight_decay": 0.01, "momentum_decay": 0.5}


def _checkpoint(cls, steps=3):
    _, opt, params = trajectory(lambda g: cls(g, **KWARGS), steps, group2=GROUP2, return_opt=True)
    return opt, params, copy.deepcopy(opt.state_dict())


def test_loads_torch_checkpoint_and_continues_like_torch():
    torch_opt, params, state = _checkpoint(torch.optim.NAdam)
    ours = resume(lambda g: NAdam(g, **KWARGS), params, state, 3, 30, GROUP2)
    assert_same(ours, continue_run(torch_opt, params, 30, 3), 1e-10, "NAdam continuing a torch checkpoint")


def test_torch_continues_our_checkpoint_as_its_own():
    """torch's load casts mu_product to the parameters' float64 (so torch drifts ~1e-8 from its own
    uninterrupted run here); the oracle is torch resuming its own checkpoint."""
    _, our_params, our_state = _checkpoint(NAdam)
    _, torch_params, torch_state = _checkpoint(torch.optim.NAdam)

    def make(g):
        return torch.optim.NAdam(g, **KWARGS)

    from_ours = resume(make, our_params, our_state, 3, 30, GROUP2)
    from_torch = resume(make, torch_params, torch_state, 3, 30, GROUP2)
    assert_same(from_ours, from_torch, 1e-10, "torch continuing our checkpoint vs its own")


def test_state_layout_matches_torch():
    _, ours, _ = trajectory(lambda g: NAdam(g, lr=0.01), 10, group2=GROUP2, return_opt=True)
    _, theirs, _ = trajectory(lambda g: torch.optim.NAdam(g, lr=0.01), 10, group2=GROUP2, return_opt=True)
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
        ({"momentum_decay": -4e-3}, "momentum_decay"),
        ({"capturable": True}, "capturable"),
        ({"differentiable": True}, "differentiable"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        NAdam([torch.zeros(2, requires_grad=True)], **kwargs)
