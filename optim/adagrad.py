"""Adagrad: per-coordinate step sizes from the running sum of squared gradients."""

from __future__ import annotations

import torch
from torch import Tensor

from optim import _fused
from optim._base import (
    Optimizer,
    as_real,
    foreach_signed_grads,
    group_tensors,
    increment_steps,
    new_step,
    to_scalar,
)
from optim._docs import with_arg_docs
from optim._validate import check_ge, check_lr, reject_unsupported

__all__ = ["Adagrad"]


@with_arg_docs
class Adagrad(Optimizer):
    r"""Adagrad: each coordinate's step shrinks with the square root of its summed squared gradients.

    With :math:`g_t = \pm\nabla f(\theta_{t-1})` (negated when ``maximize``), sum
    :math:`s_0 = \tau` (``initial_accumulator_value``) and decayed rate
    :math:`\tilde\gamma_t = \gamma / (1 + (t - 1)\eta)`:

    .. math::
        \begin{aligned}
            g_t &\leftarrow g_t + \lambda \theta_{t-1} \\
            s_t &\leftarrow s_{t-1} + g_t^2 \\
            \theta_t &\leftarrow \theta_{t-1} - \tilde\gamma_t \, g_t / (\sqrt{s_t} + \epsilon)
        \end{aligned}

    Sparse gradients (``nn.Embedding(sparse=True)``) update only the rows they touch.  State is
    created at a parameter's first gradient from its group's ``initial_accumulator_value``
    (torch fills every parameter's state at construction from the constructor's value);
    ``share_memory()`` creates all of it first, as torch's does, so Hogwild workers share it.

    Args:
        {params}
        lr (float or Tensor, optional): learning rate :math:`\gamma` (default: 1e-2).
        lr_decay (float, optional): learning-rate decay :math:`\eta` (default: 0).
        {weight_decay}
        initial_accumulator_value (float, optional): starting value :math:`\tau` of the sum of
            squared gradients (default: 0).
        eps (float, optional): term added to the denominator for numerical stability (default: 1e-10).
        {foreach}
        {maximize}
        {differentiable}
        fused (bool, optional): one compiled kernel per group per step (``optim._fused``; CUDA tensors: Triton)
            (default: None, the foreach/loop choice).

    Example:
        >>> opt = Adagrad(model.parameters(), lr=0.01, lr_decay=1e-4)
        >>> opt.zero_grad()
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()

    Reference:
        J. Duchi, E. Hazan, Y. Singer, "Adaptive Subgradient Methods for Online Learning and
        Stochastic Optimization", JMLR 12, 2011.
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_lr(lr)
        check_ge("lr_decay", lr_decay)
        check_ge("weight_decay", weight_decay)
        check_ge("initial_accumulator_value", initial_accumulator_value)
        check_ge("eps", eps)
        reject_unsupported(differentiable=differentiable)
        _fused.check_flags(fused=fused, foreach=foreach)
        defaults = dict(
            lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize,
            differentiable=differentiable, fused=fused,
        )
        super().__init__(params, defaults)

    _group_defaults = dict(foreach=None, maximize=False, differentiable=False, fused=None)
    _counters = ("step",)

    def _state(self, p: Tensor, group: dict) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = new_step()
            init = group["initial_accumulator_value"]
            state["sum"] = torch.full_like(
                p, complex(init, init) if p.is_complex() else init, memory_format=torch.preserve_format
            )
        return state

    def share_memory(self) -> None:
        """Create every parameter's state now and move the sums to shared memory (Hogwild)."""
        for group in self.param_groups:
            for p in group["params"]:
                self._state(p, group)["sum"].share_memory_()

    def _init_group(self, group):
        params, grads, sums, steps = [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self._state(p, group)
            params.append(as_real(p))
            grads.append(as_real(p.grad) if not p.grad.is_sparse else p.grad)
            sums.append(as_real(state["sum"]))
            steps.append(state["step"])
        return params, grads, sums, steps

    def _use_foreach(self, group, lists):
        # foreach kernels take dense tensors only
        return super()._use_foreach(group, lists) and not any(g.is_sparse for g in lists[1])

    def _hyperparameters(self, group):
        return dict(
            lr=to_scalar(group["lr"]), weight_decay=group["weight_decay"], lr_decay=group["lr_decay"],
            eps=group["eps"], maximize=group["maximize"],
        )

    def _update_functions(self):
        return _single_tensor_adagrad, _multi_tensor_adagrad, _fused_adagrad



def _single_tensor_adagrad(
    params, grads, sums, steps,
    *, lr, weight_decay, lr_decay, eps, maximize,
) -> None:
    """One Adagrad step, tensor by tensor (sparse gradients touch only their rows)."""
    for param, grad, state_sum, step_t in zip(params, grads, sums, steps):
        step_t += 1
        grad = -grad if maximize else grad
        if weight_decay != 0:
            if grad.is_sparse:
                raise RuntimeError("Adagrad: weight_decay is not compatible with sparse gradients")
            grad = grad.add(param, alpha=weight_decay)
        clr = lr / (1 + (step_t.item() - 1) * lr_decay)

        if grad.is_sparse:
            grad = grad.coalesce()  # the update is non-linear in the gradient: indices must be unique
            indices, values = grad._indices(), grad._values()
            state_sum.add_(torch.sparse_coo_tensor(indices, values.pow(2), grad.size(), check_invariants=False))
            std_values = state_sum.sparse_mask(grad)._values().sqrt_().add_(eps)
            param.add_(torch.sparse_coo_tensor(indices, values / std_values, grad.size(), check_invariants=False), alpha=-clr)
        else:
            state_sum.addcmul_(grad, grad, value=1)
            param.addcdiv_(grad, state_sum.sqrt().add_(eps), value=-clr)


def _multi_tensor_adagrad(
    params, grads, sums, steps,
    *, lr, weight_decay, lr_decay, eps, maximize,
) -> None:
    """One Adagrad step over ``torch._foreach_*`` kernels, per (device, dtype) group."""
    for dev_params, dev_grads, dev_sums, dev_steps in group_tensors(params, grads, sums, steps).values():
        increment_steps(dev_steps)
        dev_grads, owned = foreach_signed_grads(dev_params, dev_grads, maximize=maximize, weight_decay=weight_decay)

        minus_clr = [-lr / (1 + (s.item() - 1) * lr_decay) for s in dev_steps]
        torch._foreach_addcmul_(dev_sums, dev_grads, dev_grads, value=1)
        std = torch._foreach_sqrt(dev_sums)
        torch._foreach_add_(std, eps)
        if owned:
            torch._foreach_mul_(dev_grads, minus_clr)
            numerator = dev_grads
        else:
            numerator = torch._foreach_mul(dev_grads, minus_clr)
        torch._foreach_addcdiv_(dev_params, numerator, std)


def _fused_adagrad(
    params, grads, sums, steps,
    *, lr, weight_decay, lr_decay, eps, maximize,
) -> None:
    """:func:`_multi_tensor_adagrad`'s update, one kernel call per group (``optim._fused``): each
    element of the parameter, gradient and sum is read once and written once.  Falls back to the
    foreach path (the loop for sparse gradients), warning once, where the kernel does not apply."""
    hyperparameters = dict(lr=lr, weight_decay=weight_decay, lr_decay=lr_decay, eps=eps, maximize=maximize)
    minus_clrs = [-lr / (1 + s.item() * lr_decay) for s in steps]  # step t - 1 before the increment
    if _fused.run("adagrad_", params, grads, sums, minus_clrs, weight_decay, eps, maximize):
        increment_steps(steps)
        return
    sparse = any(g.is_sparse for g in grads)
    (_single_tensor_adagrad if sparse else _multi_tensor_adagrad)(params, grads, sums, steps, **hyperparameters)
