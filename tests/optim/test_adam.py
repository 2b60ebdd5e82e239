"""Adam against torch.optim.Adam (every flag combination), against itself (foreach vs loop,
checkpoints), against its first-step closed form, and its hyperparameter checks."""

import copy
import importlib
import inspect
import itertools

import pytest
import torch

import optim.adam
from optim.adam import Adam
from tests.optim.parity import assert_same, continue_run, resume, trajectory

GROUP2 = {"lr": 0.03, "betas": (0.8, 0.95), "eps": 1e-6}
FLAG_CASES = [
    pytest.param(
        {"lr": 0.01, "weight_decay": wd, "maximize": maximize, "amsgrad": amsgrad, "decoupled_weight_decay": dec},
        id=f"wd{wd}-max{maximize}-ams{amsgrad}-dec{dec}",
    )
    for wd, maximize, amsgrad, dec in itertools.product((0.0, 0.1), (False, True), (False, True), (False, True))
]


def _run(cls, kwargs, steps=50, group2=GROUP2):
    return trajectory(lambda groups: cls(groups, **kwargs), steps, group2=group2)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("kwargs", FLAG_CASES)
def test_matches_torch(kwargs, foreach):
    ours = _run(Adam, {**kwargs, "foreach": foreach})
    theirs = _run(torch.optim.Adam, {**kwargs, "foreach": foreach})
    assert_same(ours, theirs, 1e-10, "Adam vs torch.optim.Adam")


@pytest.mark.parametrize("kwargs", FLAG_CASES)
def test_foreach_equals_single_tensor(kwargs):
    multi = _run(Adam, {**kwargs, "foreach": True})
    single = _run(Adam, {**kwargs, "foreach": False})
    assert_same(multi, single, 1e-12, "foreach vs single-tensor")


@pytest.mark.parametrize("foreach", [False, True])
def test_complex_parameters_match_torch(foreach):
    g = torch.Generator().manual_seed(3)
    shapes = [(4, 3), (5,)]
    start = [torch.randn(s, dtype=torch.complex128, generator=g) for s in shapes]
    targets = [torch.randn(s, dtype=torch.complex128, generator=g) for s in shapes]

    def run(cls):
        params = [p.clone().requires_grad_(True) for p in start]
        opt = cls(params, lr=0.05, weight_decay=0.1, amsgrad=True, foreach=foreach)
        for _ in range(20):
            opt.zero_grad()
            sum(((p - t).abs() ** 2).sum() for p, t in zip(params, targets)).backward()
            opt.step()
        return [[p.detach().clone() for p in params]]

    assert_same(run(Adam), run(torch.optim.Adam), 1e-10, "complex Adam vs torch")


def test_foreach_groups_mixed_dtypes():
    """A group holding float32 and float64 parameters is split per dtype and still matches the loop."""

    def run(foreach):
        g = torch.Generator().manual_seed(5)
        params = [torch.randn(7, dtype=dt, generator=g).requires_grad_(True)
                  for dt in (torch.float32, torch.float64, torch.float32)]
        opt = Adam(params, lr=0.05, amsgrad=True, foreach=foreach)
        for step in range(10):
            opt.zero_grad()
            sum((p.double() * (step + 1) - 1).pow(2).sum() for p in params).backward()
            opt.step()
        return [[p.detach().double() for p in params]]

    assert_same(run(True), run(False), 1e-12, "mixed dtypes foreach vs loop")


@pytest.mark.parametrize("foreach, expect_multi", [(None, False), (True, True), (False, False)])
def test_foreach_flag_picks_the_update_path(monkeypatch, foreach, expect_multi):
    """foreach=None means the loop on CPU (like torch); True forces the multi-tensor path."""
    called = []
    for name in ("_single_tensor_adam", "_multi_tensor_adam"):
        real = getattr(optim.adam, name)
        monkeypatch.setattr(optim.adam, name, lambda *a, _n=name, _f=real, **k: (called.append(_n), _f(*a, **k)))
    _run(Adam, {"lr": 0.01, "foreach": foreach}, steps=1)
    assert set(called) == {"_multi_tensor_adam" if expect_multi else "_single_tensor_adam"}


def _spy_paths(monkeypatch, module, called):
    for name in ("_single_tensor_adam", "_multi_tensor_adam"):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _n=name, _f=real, **k: (called.append(_n), _f(*a, **k)))


@pytest.mark.parametrize("cpu_has_foreach", [False, True], ids=["cpu", "cpu-as-foreach-device"])
@pytest.mark.parametrize("as_parameters", [False, True], ids=["tensors", "parameters"])
def test_foreach_none_takes_the_path_torch_takes(monkeypatch, as_parameters, cpu_has_foreach):
    """foreach=None picks the multi-tensor path exactly when torch.optim.Adam does, nn.Parameters
    included (every real model's on CUDA; CPU is declared a foreach device here to stand in for
    it without a GPU, in torch's device list, which both rules read)."""
    if cpu_has_foreach:
        import torch.utils._foreach_utils as foreach_utils

        devices = [*foreach_utils._get_foreach_kernels_supported_devices(), "cpu"]
        monkeypatch.setattr(foreach_utils, "_get_foreach_kernels_supported_devices", lambda: devices)
        monkeypatch.setattr(importlib.import_module("torch.optim.optimizer"),
                            "_get_foreach_kernels_supported_devices", lambda: devices)
    ours, theirs = [], []
    _spy_paths(monkeypatch, optim.adam, ours)
    _spy_paths(monkeypatch, importlib.import_module("torch.optim.adam"), theirs)
    wrap = torch.nn.Parameter if as_parameters else (lambda t: t.requires_grad_(True))
    for cls in (Adam, torch.optim.Adam):
        params = [wrap(torch.randn(3, 2, dtype=torch.float64)), wrap(torch.randn(2, dtype=torch.float64))]
        opt = cls(params, lr=0.01, foreach=None)
        sum(p.pow(2).sum() for p in params).backward()
        opt.step()
    assert set(ours) == set(theirs) == {"_multi_tensor_adam" if cpu_has_foreach else "_single_tensor_adam"}


def test_signature_matches_torch():
    """Same names, order, keyword-only markers and defaults: a drop-in replacement."""

    def signature(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls.__init__).parameters.values()]

    assert signature(Adam) == signature(torch.optim.Adam)


def test_first_step_is_lr_times_sign_of_gradient():
    """Paper, sec. 2: after one step m_hat = g and v_hat = g^2, so theta moves by -lr * g / (|g| + eps)."""
    g = torch.tensor([0.3, -2.0, 1e-3, 0.0], dtype=torch.float64)
    theta = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64, requires_grad=True)
    theta.grad = g.clone()
    lr, eps = 0.1, 1e-8
    Adam([theta], lr=lr, eps=eps).step()
    expected = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64) - lr * g / (g.abs() + eps)
    torch.testing.assert_close(theta.detach(), expected, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("split", [5, 20])
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("foreach", [False, True])
def test_state_dict_resume_is_seamless(split, amsgrad, foreach):
    def make(groups):
        return Adam(groups, lr=0.01, weight_decay=0.01, amsgrad=amsgrad, foreach=foreach)

    whole = _run(Adam, {"lr": 0.01, "weight_decay": 0.01, "amsgrad": amsgrad, "foreach": foreach}, 40)
    head, opt, params = trajectory(make, split, group2=GROUP2, return_opt=True)
    tail = resume(make, params, copy.deepcopy(opt.state_dict()), split, 40 - split, GROUP2)
    assert_same(head + tail, whole, 0.0, "resumed vs uninterrupted")


@pytest.mark.parametrize("source, target", [(torch.optim.Adam, Adam), (Adam, torch.optim.Adam)])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_state_dict_interchanges_with_torch(source, target, amsgrad):
    """A checkpoint from one implementation continues in the other exactly as in the first."""
    kwargs = {"lr": 0.01, "weight_decay": 0.01, "amsgrad": amsgrad}
    _, src_opt, params = trajectory(lambda g: source(g, **kwargs), 15, group2=GROUP2, return_opt=True)
    other = resume(lambda g: target(g, **kwargs), params, copy.deepcopy(src_opt.state_dict()), 15, 30, GROUP2)
    same = continue_run(src_opt, params, 30, 15)
    assert_same(other, same, 1e-10, f"{target.__module__} continuing a {source.__module__} checkpoint")


def test_state_layout_matches_torch():
    kwargs = {"lr": 0.01, "amsgrad": True}
    _, ours, _ = trajectory(lambda g: Adam(g, **kwargs), 10, group2=GROUP2, return_opt=True)
    _, theirs, _ = trajectory(lambda g: torch.optim.Adam(g, **kwargs), 10, group2=GROUP2, return_opt=True)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert [sorted(g) for g in ours_sd["param_groups"]] == [sorted(g) for g in theirs_sd["param_groups"]]
    for pid, their_state in theirs_sd["state"].items():
        our_state = ours_sd["state"][pid]
        assert sorted(our_state) == sorted(their_state)
        for key, value in their_state.items():
            assert (our_state[key].dtype, our_state[key].shape, our_state[key].device) == (
                value.dtype, value.shape, value.device), key


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"lr": -1e-3}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": torch.tensor([1e-3, 1e-3])}, "lr"),
        ({"eps": -1e-8}, "eps"),
        ({"betas": (1.0, 0.999)}, r"betas\[0\]"),
        ({"betas": (-0.1, 0.999)}, r"betas\[0\]"),
        ({"betas": (0.9, 1.0)}, r"betas\[1\]"),
        ({"betas": (0.9, 0.99, 0.9)}, "betas"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"capturable": True}, "capturable"),
        ({"differentiable": True}, "differentiable"),
        ({"fused": True}, "fused"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Adam([torch.zeros(2, requires_grad=True)], **kwargs)


def test_sparse_gradient_is_refused():
    p = torch.zeros(3, requires_grad=True)
    p.grad = torch.sparse_coo_tensor([[0]], [1.0], (3,), check_invariants=True)
    with pytest.raises(RuntimeError, match="sparse"):
        Adam([p]).step()


def test_tensor_lr_and_closure():
    """A 1-element tensor lr acts like the float; step(closure) returns the closure's loss."""
    def run(lr):
        p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
        opt = Adam([p], lr=lr)

        def closure():
            opt.zero_grad()
            loss = (p**2).sum()
            loss.backward()
            return loss

        losses = [opt.step(closure).item() for _ in range(5)]
        return p.detach(), losses

    (p_tensor, losses), (p_float, _) = run(torch.tensor(0.1, dtype=torch.float64)), run(0.1)
    torch.testing.assert_close(p_tensor, p_float, rtol=0, atol=0)
    assert losses[0] == pytest.approx(5.0)
