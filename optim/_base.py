"""Shared plumbing for Descent's optimizers: validation, the foreach default, shared docs.

The optimizers follow torch.optim's layout: a thin ``Optimizer`` subclass validates its
hyperparameters and packs ``defaults``; the arithmetic lives in module-level pure functions
``_single_tensor_<name>`` (a loop over tensors) and ``_multi_tensor_<name>`` (grouped
``torch._foreach_*`` calls), chosen by the ``foreach`` flag.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def check_ge(name: str, value: float, bound: float = 0.0) -> None:
    """Raise ``ValueError`` unless ``value >= bound``."""
    if isinstance(value, torch.Tensor):
        value = value.item()
    if not (value >= bound) or math.isnan(value):
        raise ValueError(f"Invalid {name}: {value} (must be >= {bound})")


def check_gt(name: str, value: float, bound: float = 0.0) -> None:
    """Raise ``ValueError`` unless ``value > bound``."""
    if isinstance(value, torch.Tensor):
        value = value.item()
    if not (value > bound):
        raise ValueError(f"Invalid {name}: {value} (must be > {bound})")


def check_range(name: str, value: float, low: float, high: float, *, high_open: bool = True) -> None:
    """Raise ``ValueError`` unless ``low <= value < high`` (``<= high`` when ``high_open`` is False)."""
    ok = low <= value < high if high_open else low <= value <= high
    if not ok:
        bracket = ")" if high_open else "]"
        raise ValueError(f"Invalid {name}: {value} (must be in [{low}, {high}{bracket})")


def check_betas(betas: tuple[float, float], name: str = "betas") -> None:
    """Raise ``ValueError`` unless both betas lie in [0, 1)."""
    if len(betas) != 2:
        raise ValueError(f"Invalid {name}: {betas} (must be a pair)")
    for i, b in enumerate(betas):
        check_range(f"beta parameter at index {i}", b, 0.0, 1.0)


# torch's rule for ``foreach=None`` (torch/optim/optimizer.py ``_default_to_fused_or_foreach``):
# plain tensors and Parameters, not subclasses, on the device types torch has foreach kernels for.
FOREACH_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)


def foreach_device_types() -> list[str]:
    """The device types with ``torch._foreach_*`` kernels, asked of torch at each call (its list
    names the private-use backend by its current name); a copy of torch's list if torch moves it."""
    try:
        from torch.utils import _foreach_utils
    except ImportError:  # pragma: no cover - torch keeps it there as of 2.x
        return ["cuda", "xpu", "mtia", torch._C._get_privateuse1_backend_name()]
    return _foreach_utils._get_foreach_kernels_supported_devices()


def foreach_by_default(kinds: Iterable[tuple[str, type]], *, differentiable: bool = False) -> bool:
    """The ``foreach=None`` decision from each parameter's ``(device type, Python type)``:
    the multi-tensor path when every parameter is a ``torch.Tensor`` or ``nn.Parameter`` on a
    device type with foreach kernels (``foreach_device_types``: CUDA and the others torch lists)
    and ``differentiable`` is off, else the single-tensor loop (on CPU the foreach kernels only
    save Python overhead and pay extra allocations).  Pure in its arguments, so the rule is
    tested without a GPU.  One departure from torch: no parameters means the loop (torch says
    foreach), so callers never run the multi-tensor path on empty lists."""
    kinds = list(kinds)
    if differentiable or not kinds:
        return False
    devices = foreach_device_types()
    return all(device in devices and cls in FOREACH_TENSOR_TYPES for device, cls in kinds)


def default_foreach(params: Iterable[torch.Tensor | None], *, differentiable: bool = False) -> bool:
    """What ``foreach=None`` means, as in torch: ``foreach_by_default`` of the parameters'
    device types and Python types (``None`` entries skipped, as torch skips them)."""
    kinds = [(p.device.type, type(p)) for p in params if p is not None]
    return foreach_by_default(kinds, differentiable=differentiable)


def group_tensors(params, grads, *states):
    """Group per-parameter lists by (device, dtype) for the ``_foreach_*`` kernels.

    Returns ``{(device, dtype): ([params], [grads], [state0], ...), ...}``; every list is
    index-aligned with its siblings."""
    out: dict = {}
    for i, p in enumerate(params):
        key = (p.device, p.dtype)
        lists = out.setdefault(key, tuple([] for _ in range(2 + len(states))))
        lists[0].append(p)
        lists[1].append(grads[i])
        for j, s in enumerate(states):
            lists[2 + j].append(s[i])
    return out


def to_scalar(x):
    """A Python float from a float or 0-dim tensor (state 'step' is kept as a tensor like torch)."""
    return x.item() if isinstance(x, torch.Tensor) else x


# Argument text shared by several docstrings (written once, formatted in).
ARG_DOCS = {
    "params": "params (iterable): parameters or dicts defining parameter groups.",
    "lr": "lr (float, optional): learning rate.",
    "weight_decay": "weight_decay (float, optional): L2 penalty added to the gradient (default: 0).",
    "maximize": "maximize (bool, optional): maximize the objective instead of minimizing (default: False).",
    "foreach": (
        "foreach (bool, optional): use the multi-tensor ``torch._foreach_*`` path; ``None`` picks it "
        "when all parameters are on CUDA (or another device type with foreach kernels), like torch "
        "(default: None)."
    ),
    "eps": "eps (float, optional): term added to the denominator for numerical stability.",
    "betas": "betas (Tuple[float, float], optional): decay rates of the first and second moment averages.",
    "capturable": "capturable (bool, optional): accepted for torch compatibility; must be False.",
    "differentiable": "differentiable (bool, optional): accepted for torch compatibility; must be False.",
}
