"""AdamW against torch.optim.AdamW, against Adam(decoupled_weight_decay=True), against the
paper's decoupled decay, and across checkpoints."""

import copy
import inspect
import itertools
import pickle

import pytest
import torch

from optim.adam import Adam, AdamW
from tests.optim.parity import assert_same, continue_run, resume, trajectory

GROUP2 = {"lr": 0.03, "betas": (0.8, 0.95), "weight_decay": 0.05}
FLAG_CASES = [
    pytest.param({"lr": 0.01, "weight_decay": wd, "maximize": maximize, "amsgrad": amsgrad},
                 id=f"wd{wd}-max{maximize}-ams{amsgrad}")
    for wd, maximize, amsgrad in itertools.product((0.0, 1e-2, 0.3), (False, True), (False, True))
]


def _run(cls, kwargs, steps=50):
    return trajectory(lambda groups: cls(groups, **kwargs), steps, group2=GROUP2)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("kwargs", FLAG_CASES)
def test_matches_torch(kwargs, foreach):
    ours = _run(AdamW, {**kwargs, "foreach": foreach})
    theirs = _run(torch.optim.AdamW, {**kwargs, "foreach": foreach})
    assert_same(ours, theirs, 1e-10, "AdamW vs torch.optim.AdamW")


@pytest.mark.parametrize("kwargs", FLAG_CASES)
def test_foreach_equals_single_tensor(kwargs):
    assert_same(_run(AdamW, {**kwargs, "foreach": True}), _run(AdamW, {**kwargs, "foreach": False}), 1e-12)


@pytest.mark.parametrize("kwargs", FLAG_CASES[:4])
def test_is_adam_with_decoupled_weight_decay(kwargs):
    assert_same(_run(AdamW, kwargs), _run(Adam, {**kwargs, "decoupled_weight_decay": True}), 0.0)


def _signature(cls):
    return [(p.name, p.kind, p.default) for p in inspect.signature(cls.__init__).parameters.values()]


def test_signature_matches_torch():
    """Same names, order, keyword-only markers and defaults: a drop-in replacement."""
    assert _signature(AdamW) == _signature(torch.optim.AdamW)


def test_zero_gradient_step_is_pure_decay():
    """Loshchilov & Hutter, Alg. 2: with g = 0 the moments stay 0, so the weights only shrink by lr * lambda."""
    theta0 = torch.tensor([1.0, -3.0, 0.25], dtype=torch.float64)
    theta = theta0.clone().requires_grad_(True)
    opt = AdamW([theta], lr=0.1, weight_decay=0.2)
    for _ in range(3):
        theta.grad = torch.zeros_like(theta)
        opt.step()
    torch.testing.assert_close(theta.detach(), theta0 * (1 - 0.1 * 0.2) ** 3, rtol=1e-15, atol=0)


@pytest.mark.parametrize("foreach", [False, True])
def test_state_dict_resume_is_seamless(foreach):
    def make(groups):
        return AdamW(groups, lr=0.01, amsgrad=True, foreach=foreach)

    whole = trajectory(make, 40, group2=GROUP2)
    head, opt, params = trajectory(make, 12, group2=GROUP2, return_opt=True)
    tail = resume(make, params, copy.deepcopy(opt.state_dict()), 12, 28, GROUP2)
    assert_same(head + tail, whole, 0.0, "resumed vs uninterrupted")


@pytest.mark.parametrize("source, target", [(torch.optim.AdamW, AdamW), (AdamW, torch.optim.AdamW)])
def test_state_dict_interchanges_with_torch(source, target):
    kwargs = {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}
    _, src_opt, params = trajectory(lambda g: source(g, **kwargs), 15, group2=GROUP2, return_opt=True)
    other = resume(lambda g: target(g, **kwargs), params, copy.deepcopy(src_opt.state_dict()), 15, 30, GROUP2)
    assert_same(other, continue_run(src_opt, params, 30, 15), 1e-10, "continuing the other's checkpoint")


def test_stays_decoupled_after_loading_a_coupled_checkpoint():
    """Like torch, AdamW forces decoupled decay even when the loaded param_groups say otherwise."""
    p = torch.ones(3, requires_grad=True)
    state = Adam([p], weight_decay=0.1).state_dict()
    opt = AdamW([p])
    opt.load_state_dict(state)
    assert all(g["decoupled_weight_decay"] for g in opt.param_groups)
    assert pickle.loads(pickle.dumps(opt)).param_groups[0]["decoupled_weight_decay"] is True


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"lr": -1e-3}, "lr"),
        ({"eps": -1.0}, "eps"),
        ({"betas": (0.9, 1.5)}, r"betas\[1\]"),
        ({"weight_decay": -1e-2}, "weight_decay"),
        ({"capturable": True}, "capturable"),
        ({"fused": True}, "fused"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        AdamW([torch.zeros(2, requires_grad=True)], **kwargs)
