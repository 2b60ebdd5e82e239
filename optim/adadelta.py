"""Adadelta: steps sized by the ratio of running RMS of past updates to running RMS of gradients."""

from __future__ import annotations

import torch
from torch import Tensor

from optim._base import (
    Optimizer,
    as_real,
    dense_grad,
    foreach_signed_grads,
    group_tensors,
    increment_steps,
    new_step,
    signed_grad,
    to_scalar,
    zeros_like,
)
from optim._docs import with_arg_docs
from optim._validate import check_ge, check_lr, check_range, reject_unsupported

__all__ = ["Adadelta"]


@with_arg_docs
class Adadelta(Optimizer):
    r"""Adadelta: a unit-consistent Adagrad whose memory of past gradients decays.

    With :math:`g_t = \pm\nabla f(\theta_{t-1})` (negated when ``maximize``) and
    :math:`v_0 = u_0 = 0`:

    .. math::
        \begin{aligned}
            g_t &\leftarrow g_t + \lambda \theta_{t-1} \\
            v_t &\leftarrow \rho v_{t-1} + (1 - \rho) g_t^2 \\
            \Delta x_t &\leftarrow \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}} \, g_t \\
            u_t &\leftarrow \rho u_{t-1} + (1 - \rho) \Delta x_t^2 \\
            \theta_t &\leftarrow \theta_{t-1} - \gamma \Delta x_t
        \end{aligned}

    :math:`v` is ``square_avg`` and :math:`u` is ``acc_delta`` in the state.  The paper has no
    learning rate (:math:`\gamma = 1`, torch's default); it is kept to scale the step.

    Args:
        {params}
        lr (float or Tensor, optional): factor :math:`\gamma` on the step (default: 1.0).
        rho (float, optional): decay :math:`\rho` of both running averages, in [0, 1] (default: 0.9).
        eps (float, optional): :math:`\epsilon` inside both square roots (default: 1e-6).
        {weight_decay}
        {foreach}
        {capturable}
        {maximize}
        {differentiable}

    Example:
        >>> opt = Adadelta(model.parameters())
        >>> opt.zero_grad()
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()

    Reference:
        M. D. Zeiler, "ADADELTA: An Adaptive Learning Rate Method", arXiv:1212.5701, 2012.
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_lr(lr)
        check_range("rho", rho, 0.0, 1.0, high_open=False)
        check_ge("eps", eps)
        check_ge("weight_decay", weight_decay)
        reject_unsupported(capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize, capturable=capturable,
            foreach=foreach, differentiable=differentiable,
        )
        super().__init__(params, defaults)

    _group_defaults = dict(foreach=None, maximize=False, differentiable=False, capturable=False)
    _counters = ("step",)

    def _init_group(self, group):
        params, grads, square_avgs, acc_deltas, steps = [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = dense_grad(p, "Adadelta")
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["square_avg"] = zeros_like(p)
                state["acc_delta"] = zeros_like(p)
            params.append(as_real(p))
            grads.append(as_real(grad))
            square_avgs.append(as_real(state["square_avg"]))
            acc_deltas.append(as_real(state["acc_delta"]))
            steps.append(state["step"])
        return params, grads, square_avgs, acc_deltas, steps

    def _hyperparameters(self, group):
        return dict(
            lr=to_scalar(group["lr"]), rho=group["rho"], eps=group["eps"], weight_decay=group["weight_decay"],
            maximize=group["maximize"],
        )

    def _update_functions(self):
        return _single_tensor_adadelta, _multi_tensor_adadelta



def _single_tensor_adadelta(
    params, grads, square_avgs, acc_deltas, steps,
    *, lr, rho, eps, weight_decay, maximize,
) -> None:
    """One Adadelta step, tensor by tensor."""
    for param, grad, square_avg, acc_delta, step_t in zip(params, grads, square_avgs, acc_deltas, steps):
        step_t += 1
        grad = signed_grad(param, grad, maximize=maximize, weight_decay=weight_decay)
        square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
        std = square_avg.add(eps).sqrt_()
        delta = acc_delta.add(eps).sqrt_().div_(std).mul_(grad)
        acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        param.add_(delta, alpha=-lr)


def _multi_tensor_adadelta(
    params, grads, square_avgs, acc_deltas, steps,
    *, lr, rho, eps, weight_decay, maximize,
) -> None:
    """One Adadelta step over ``torch._foreach_*`` kernels, per (device, dtype) group."""
    grouped = group_tensors(params, grads, square_avgs, acc_deltas, steps)
    for dev_params, dev_grads, dev_square_avgs, dev_acc_deltas, dev_steps in grouped.values():
        increment_steps(dev_steps)
        dev_grads, _ = foreach_signed_grads(dev_params, dev_grads, maximize=maximize, weight_decay=weight_decay)

        torch._foreach_mul_(dev_square_avgs, rho)
        torch._foreach_addcmul_(dev_square_avgs, dev_grads, dev_grads, value=1 - rho)
        std = torch._foreach_add(dev_square_avgs, eps)
        torch._foreach_sqrt_(std)

        deltas = torch._foreach_add(dev_acc_deltas, eps)
        torch._foreach_sqrt_(deltas)
        torch._foreach_div_(deltas, std)
        torch._foreach_mul_(deltas, dev_grads)

        torch._foreach_mul_(dev_acc_deltas, rho)
        torch._foreach_addcmul_(dev_acc_deltas, deltas, deltas, value=1 - rho)
        torch._foreach_add_(dev_params, deltas, alpha=-lr)
