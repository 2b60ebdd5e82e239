"""The ``foreach=None`` rule in optim._base is torch's: plain tensors and ``nn.Parameter``s (not
subclasses) on a device type with foreach kernels, never when differentiable.  The rule is a pure
function of (device type, Python type) pairs, so its CUDA rows run without a GPU; the comparison
with torch's own ``_default_to_fused_or_foreach`` runs on CPU tensors, once as torch ships (CPU has
no foreach kernels) and once with CPU declared foreach-capable in both, so the type half of the
rule is compared too and not only the device half."""

import importlib

import pytest
import torch
import torch.utils._foreach_utils
from torch import nn
from torch.optim.optimizer import _default_to_fused_or_foreach

from optim._base import default_foreach, foreach_by_default, foreach_device_types

# torch.optim deletes its ``optimizer`` attribute; the module is still in sys.modules
TORCH_OPTIMIZER = importlib.import_module("torch.optim.optimizer")
P, T = nn.Parameter, torch.Tensor


class _Subclass(torch.Tensor):
    """A tensor subclass: torch's rule gives it the loop, whatever its device."""


PRIVATE = torch._C._get_privateuse1_backend_name()

# (device type, Python type) of every parameter -> foreach=None picks the multi-tensor path
RULE_CASES = {
    "empty": ([], False),  # our one departure from torch (which says True): no parameters, no foreach
    "cuda-parameter": ([("cuda", P)], True),  # every real model on a GPU: the bug this table pins
    "cuda-tensor": ([("cuda", T)], True),
    "cuda-parameters-and-tensors": ([("cuda", P), ("cuda", T), ("cuda", P)], True),
    "cpu-parameter": ([("cpu", P)], False),
    "cpu-tensor": ([("cpu", T)], False),
    "cuda-and-cpu": ([("cuda", P), ("cpu", P)], False),
    "cpu-and-cuda": ([("cpu", T), ("cuda", T)], False),
    "xpu": ([("xpu", P)], True),
    "mtia": ([("mtia", T)], True),
    "private-use-backend": ([(PRIVATE, P)], True),
    "cuda-and-xpu": ([("cuda", P), ("xpu", P)], True),
    "mps": ([("mps", P)], False),  # fused kernels there, but no foreach kernels
    "meta": ([("meta", T)], False),
    "cuda-subclass": ([("cuda", _Subclass)], False),
    "cuda-parameter-and-subclass": ([("cuda", P), ("cuda", _Subclass)], False),
}


@pytest.mark.parametrize("kinds, expected", RULE_CASES.values(), ids=RULE_CASES.keys())
def test_rule_table(kinds, expected):
    """Each row is the decision torch's rule makes for those parameters (bar the empty row)."""
    assert foreach_by_default(kinds) is expected
    assert foreach_by_default(iter(kinds)) is expected  # any iterable, read once


@pytest.mark.parametrize("kinds", [[("cuda", P)], [("cuda", T), ("xpu", P)]], ids=["cuda", "cuda-xpu"])
def test_differentiable_never_takes_foreach(kinds):
    """torch returns (False, False) for differentiable=True before looking at the parameters."""
    assert foreach_by_default(kinds) is True
    assert foreach_by_default(kinds, differentiable=True) is False


def test_device_types_are_torchs():
    """The device list is torch's own, so a backend torch adds is picked up without a change here."""
    assert foreach_device_types() == torch.utils._foreach_utils._get_foreach_kernels_supported_devices()
    assert "cuda" in foreach_device_types() and "cpu" not in foreach_device_types()


def _tensor(kind: str) -> torch.Tensor:
    base = torch.zeros(3, dtype=torch.float64)
    if kind == "parameter":
        return nn.Parameter(base)
    if kind == "subclass":
        return base.as_subclass(_Subclass)
    return base.requires_grad_(True)


PARAM_LISTS = {
    "parameter": ["parameter"],
    "tensor": ["tensor"],
    "parameters-and-tensors": ["parameter", "tensor", "parameter"],
    "subclass": ["subclass"],
    "parameter-and-subclass": ["parameter", "subclass"],
    "with-none": ["parameter", None, "tensor"],
}


@pytest.fixture(params=[False, True], ids=["as-shipped", "cpu-foreach-capable"])
def cpu_capable(request, monkeypatch):
    """Whether CPU is declared a foreach device, for torch's rule and ours alike."""
    if request.param:
        devices = [*torch.utils._foreach_utils._get_foreach_kernels_supported_devices(), "cpu"]
        monkeypatch.setattr(torch.utils._foreach_utils, "_get_foreach_kernels_supported_devices", lambda: devices)
        monkeypatch.setattr(TORCH_OPTIMIZER, "_get_foreach_kernels_supported_devices", lambda: devices)
    return request.param


@pytest.mark.parametrize("differentiable", [False, True])
@pytest.mark.parametrize("kinds", PARAM_LISTS.values(), ids=PARAM_LISTS.keys())
def test_default_foreach_equals_torchs_decision(kinds, differentiable, cpu_capable):
    """On real CPU tensors our decision is torch's ``_default_to_fused_or_foreach(...)[1]``.  As
    shipped both say False; with CPU declared foreach-capable the Parameter rows must say True in
    both (the old ``type(p) is torch.Tensor`` test said False) and the subclass rows False."""
    params = [None if k is None else _tensor(k) for k in kinds]
    ours = default_foreach(params, differentiable=differentiable)
    theirs = _default_to_fused_or_foreach(params, differentiable=differentiable, use_fused=False)[1]
    assert ours is theirs
    # and the comparison is not vacuous: with CPU capable, Parameters and Tensors take foreach
    assert ours is (cpu_capable and not differentiable and "subclass" not in kinds)


def test_a_models_parameters_take_foreach_on_a_foreach_device(monkeypatch):
    """``nn.Linear``'s Parameters get the multi-tensor path wherever the device has foreach
    kernels (CPU declared so here, standing in for CUDA), and the loop on plain CPU."""
    layer = nn.Linear(3, 2)
    assert default_foreach(layer.parameters()) is False
    monkeypatch.setattr(torch.utils._foreach_utils, "_get_foreach_kernels_supported_devices", lambda: ["cpu"])
    assert default_foreach(layer.parameters()) is True
    assert default_foreach([None, None]) is False  # only Nones: nothing to step
