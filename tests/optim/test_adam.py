"""Adam's own paths: foreach=None picking the path torch picks, mixed dtypes in one group, its
first step in closed form, sparse gradients, a tensor lr and the closure.  Against torch.optim.Adam
(every flag combination, checkpoints, state layout, complex parameters) in test_torch_parity.py."""

import importlib

import pytest
import torch

import optim.adam
from optim.adam import Adam
from tests.optim.mirrors import ADAM_GROUP2
from tests.optim.parity import assert_same, trajectory


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


def _spy_paths(monkeypatch, module, called):
    for name in ("_single_tensor_adam", "_multi_tensor_adam"):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _n=name, _f=real, **k: (called.append(_n), _f(*a, **k)))


@pytest.mark.parametrize("foreach, expect_multi", [(None, False), (True, True), (False, False)])
def test_foreach_flag_picks_the_update_path(monkeypatch, foreach, expect_multi):
    """foreach=None means the loop on CPU (like torch); True forces the multi-tensor path."""
    called = []
    _spy_paths(monkeypatch, optim.adam, called)
    trajectory(lambda groups: Adam(groups, lr=0.01, foreach=foreach), 1, group2=ADAM_GROUP2)
    assert set(called) == {"_multi_tensor_adam" if expect_multi else "_single_tensor_adam"}


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


def test_first_step_is_lr_times_sign_of_gradient():
    """Paper, sec. 2: after one step m_hat = g and v_hat = g^2, so theta moves by -lr * g / (|g| + eps)."""
    g = torch.tensor([0.3, -2.0, 1e-3, 0.0], dtype=torch.float64)
    theta = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64, requires_grad=True)
    theta.grad = g.clone()
    lr, eps = 0.1, 1e-8
    Adam([theta], lr=lr, eps=eps).step()
    expected = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64) - lr * g / (g.abs() + eps)
    torch.testing.assert_close(theta.detach(), expected, rtol=1e-14, atol=1e-15)


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
