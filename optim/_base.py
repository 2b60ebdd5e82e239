"""Shared plumbing for Descent's optimizers: the foreach default, state counters, per-group lists.

The optimizers follow torch.optim's layout: a thin ``Optimizer`` subclass validates its
hyperparameters and packs ``defaults``; the arithmetic lives in module-level pure functions
``_single_tensor_<name>`` (a loop over tensors) and ``_multi_tensor_<name>`` (grouped
``torch._foreach_*`` calls), chosen by the ``foreach`` flag.  :class:`Optimizer` holds the ``step()`` every such class
shares; argument checks live in ``optim._validate`` and shared docstring text in ``optim._docs``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

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


def step_dtype() -> torch.dtype:
    """torch keeps 'step' (and other scalar counters) in float64 only when that is the default dtype."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def new_step() -> torch.Tensor:
    """A fresh 'step' counter: a 0-dim CPU tensor, as torch stores it when capturable is off."""
    return torch.tensor(0.0, dtype=step_dtype())


def increment_steps(steps: list[torch.Tensor]) -> None:
    """Add 1 to every counter; CPU counters share one wrapped 1.0 instead of one wrapped per counter."""
    if steps[0].is_cpu:
        torch._foreach_add_(steps, torch.tensor(1.0), alpha=1.0)
    else:
        torch._foreach_add_(steps, 1)


def as_real(t: torch.Tensor) -> torch.Tensor:
    """A complex tensor as a real view (last dim 2): an elementwise update treats both parts alike."""
    return torch.view_as_real(t) if t.is_complex() else t


def real_views(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return [as_real(t) for t in tensors]


def signed_grad(param: torch.Tensor, grad: torch.Tensor, *, maximize: bool, weight_decay: float) -> torch.Tensor:
    """The gradient negated when maximizing, plus the L2 term; ``grad`` itself is never written."""
    grad = -grad if maximize else grad
    return grad.add(param, alpha=weight_decay) if weight_decay != 0 else grad


def foreach_signed_grads(params, grads, *, maximize: bool, weight_decay: float):
    """:func:`signed_grad` for a (device, dtype) group; returns the list and whether it is a
    temporary of ours (safe to modify in place) rather than the gradients themselves."""
    owned = False
    if maximize:
        grads = torch._foreach_neg(grads)
        owned = True
    if weight_decay != 0:
        if owned:
            torch._foreach_add_(grads, params, alpha=weight_decay)
        else:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)
            owned = True
    return grads, owned


def dense_grad(p: torch.Tensor, optimizer_name: str) -> torch.Tensor:
    if p.grad.is_sparse:
        raise RuntimeError(f"{optimizer_name} does not support sparse gradients")
    return p.grad


def zeros_like(p: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(p, memory_format=torch.preserve_format)


def single_group_params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The parameters of an optimizer that takes one parameter group only (closure-driven solvers)."""
    if len(optimizer.param_groups) != 1:
        raise ValueError(f"{type(optimizer).__name__} doesn't support per-parameter options (parameter groups)")
    return optimizer.param_groups[0]["params"]


def run_closure(closure):
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def float_betas(betas) -> tuple[float, float]:
    """torch allows 1-element tensor betas (for capturable graphs); without capturable they are numbers."""
    return tuple(float(to_scalar(b)) for b in betas)


class Optimizer(torch.optim.Optimizer):
    """A first-order optimizer in torch's layout, with the ``step()`` they all share.

    A subclass gives ``_init_group(group)``, which creates missing state and returns the group's
    per-parameter lists (parameters first; empty when no parameter has a gradient), and
    ``_hyperparameters(group)``, the keyword arguments of its update functions, and
    ``_update_functions()``, those functions (single-tensor, multi-tensor, and fused where one
    exists).  ``_group_defaults`` fills keys that older state_dicts lack and
    ``_counters`` are the state entries turned from numbers into tensors on load."""

    _group_defaults: dict = {}
    _counters: tuple[str, ...] = ()

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self._group_defaults.items():
                group.setdefault(key, value)
        for p_state in self.state.values():
            for key in self._counters:
                if key in p_state and not torch.is_tensor(p_state[key]):
                    p_state[key] = torch.tensor(float(p_state[key]), dtype=step_dtype())

    def _init_group(self, group: dict) -> tuple[list, ...]:
        raise NotImplementedError

    def _hyperparameters(self, group: dict) -> dict:
        raise NotImplementedError

    def _update_functions(self) -> tuple[Callable, ...]:
        """(single-tensor, multi-tensor) update functions, and a third, the fused one
        (``optim._fused``), where the optimizer has one; ``fused=True`` selects it."""
        raise NotImplementedError

    def _use_foreach(self, group: dict, lists: tuple[list, ...]) -> bool:
        foreach = group["foreach"]
        return default_foreach(lists[0]) if foreach is None else foreach

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step; ``closure`` re-evaluates the model and returns the loss."""
        loss = run_closure(closure)
        for group in self.param_groups:
            lists = self._init_group(group)
            if not lists[0]:
                continue
            single, multi, *fused = self._update_functions()
            if group.get("fused") and fused:
                update = fused[0]
            else:
                update = multi if self._use_foreach(group, lists) else single
            update(*lists, **self._hyperparameters(group))
            self._after_update(group, lists)
        return loss

    def _after_update(self, group: dict, lists: tuple[list, ...]) -> None:
        """Hook for state the update functions create (SGD's first momentum buffers)."""
