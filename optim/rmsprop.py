"""RMSprop: gradients divided by a running root mean square of recent gradients."""

from __future__ import annotations

import torch
from torch import Tensor

from optim import _fused
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

__all__ = ["RMSprop"]


@with_arg_docs
class RMSprop(Optimizer):
    r"""RMSprop: divide the gradient by the root of an exponential average of its square.

    With :math:`g_t = \pm\nabla f(\theta_{t-1})` (negated when ``maximize``) and
    :math:`v_0 = \bar g_0 = b_0 = 0`:

    .. math::
        \begin{aligned}
            g_t &\leftarrow g_t + \lambda \theta_{t-1} \\
            v_t &\leftarrow \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
            \bar g_t &\leftarrow \alpha \bar g_{t-1} + (1 - \alpha) g_t,
                \qquad \tilde v_t = v_t - \bar g_t^2 \quad \text{(centered; else } \tilde v_t = v_t) \\
            b_t &\leftarrow \mu b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon), \qquad
                \theta_t \leftarrow \theta_{t-1} - \gamma b_t \quad (\mu > 0) \\
            \theta_t &\leftarrow \theta_{t-1} - \gamma g_t / (\sqrt{\tilde v_t} + \epsilon) \quad (\mu = 0)
        \end{aligned}

    ``centered`` normalises by an estimate of the gradient's variance instead of its second
    moment (Graves).  State: ``step``, ``square_avg`` (:math:`v`), ``momentum_buffer``
    (:math:`b`, when momentum > 0) and ``grad_avg`` (:math:`\bar g`, when centered); a buffer
    missing because momentum or centering was switched on later starts at zero.  Unlike torch,
    ``alpha`` above 1 is rejected.

    Args:
        {params}
        lr (float or Tensor, optional): learning rate :math:`\gamma` (default: 1e-2).
        alpha (float, optional): smoothing constant :math:`\alpha` of the averages, in [0, 1]
            (default: 0.99).
        eps (float, optional): term :math:`\epsilon` added to the denominator (default: 1e-8).
        {weight_decay}
        momentum (float, optional): momentum factor :math:`\mu` (default: 0).
        centered (bool, optional): normalise by the estimated variance of the gradient (default: False).
        {capturable}
        {foreach}
        {maximize}
        {differentiable}

    A parameter group may set ``fused=True``: one compiled kernel per group per step
    (``optim._fused``; CUDA tensors: Triton).  torch's RMSprop has no ``fused`` argument, so the constructor keeps
    torch's signature and state_dict layout and the flag lives in the group.

    Example:
        >>> opt = RMSprop(model.parameters(), lr=1e-3, momentum=0.9, centered=True)
        >>> opt.zero_grad()
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()

    References:
        G. Hinton, N. Srivastava, K. Swersky, "Neural Networks for Machine Learning", lecture 6e,
        Coursera 2012.
        A. Graves, "Generating Sequences With Recurrent Neural Networks", arXiv:1308.0850, 2013
        (centered variant).
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_lr(lr)
        check_range("alpha", alpha, 0.0, 1.0, high_open=False)
        check_ge("eps", eps)
        check_ge("weight_decay", weight_decay)
        check_ge("momentum", momentum)
        reject_unsupported(capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered, weight_decay=weight_decay,
            capturable=capturable, foreach=foreach, maximize=maximize, differentiable=differentiable,
        )
        super().__init__(params, defaults)

    _group_defaults = dict(
        momentum=0, centered=False, foreach=None, maximize=False, differentiable=False, capturable=False
    )
    _counters = ("step",)

    def _init_group(self, group):
        params, grads, square_avgs, grad_avgs, bufs, steps = [], [], [], [], [], []
        momentum, centered = group["momentum"], group["centered"]
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = dense_grad(p, "RMSprop")
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["square_avg"] = zeros_like(p)
            if momentum > 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = zeros_like(p)
            if centered and "grad_avg" not in state:
                state["grad_avg"] = zeros_like(p)
            params.append(as_real(p))
            grads.append(as_real(grad))
            square_avgs.append(as_real(state["square_avg"]))
            if momentum > 0:
                bufs.append(as_real(state["momentum_buffer"]))
            if centered:
                grad_avgs.append(as_real(state["grad_avg"]))
            steps.append(state["step"])
        return params, grads, square_avgs, grad_avgs, bufs, steps

    def _hyperparameters(self, group):
        return dict(
            lr=to_scalar(group["lr"]), alpha=group["alpha"], eps=group["eps"], weight_decay=group["weight_decay"],
            momentum=group["momentum"], centered=group["centered"], maximize=group["maximize"],
        )

    def _update_functions(self):
        return _single_tensor_rmsprop, _multi_tensor_rmsprop, _fused_rmsprop



def _single_tensor_rmsprop(
    params, grads, square_avgs, grad_avgs, momentum_buffers, steps,
    *, lr, alpha, eps, weight_decay, momentum, centered, maximize,
) -> None:
    """One RMSprop step, tensor by tensor."""
    for i, param in enumerate(params):
        steps[i] += 1
        grad = signed_grad(param, grads[i], maximize=maximize, weight_decay=weight_decay)
        square_avg = square_avgs[i]
        square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if centered:
            grad_avg = grad_avgs[i].lerp_(grad, 1 - alpha)
            avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg.add_(eps)
        if momentum > 0:
            buf = momentum_buffers[i]
            buf.mul_(momentum).addcdiv_(grad, avg)
            param.add_(buf, alpha=-lr)
        else:
            param.addcdiv_(grad, avg, value=-lr)


def _multi_tensor_rmsprop(
    params, grads, square_avgs, grad_avgs, momentum_buffers, steps,
    *, lr, alpha, eps, weight_decay, momentum, centered, maximize,
) -> None:
    """One RMSprop step over ``torch._foreach_*`` kernels, per (device, dtype) group."""
    count = len(params)
    # absent buffers ride along as placeholders so that every list groups the same way
    grouped = group_tensors(
        params, grads, square_avgs, steps,
        grad_avgs if centered else [None] * count, momentum_buffers if momentum > 0 else [None] * count,
    )
    for dev_params, dev_grads, dev_square_avgs, dev_steps, dev_grad_avgs, dev_bufs in grouped.values():
        increment_steps(dev_steps)
        dev_grads, _ = foreach_signed_grads(dev_params, dev_grads, maximize=maximize, weight_decay=weight_decay)

        torch._foreach_mul_(dev_square_avgs, alpha)
        torch._foreach_addcmul_(dev_square_avgs, dev_grads, dev_grads, value=1 - alpha)
        if centered:
            torch._foreach_lerp_(dev_grad_avgs, dev_grads, 1 - alpha)
            avg = torch._foreach_addcmul(dev_square_avgs, dev_grad_avgs, dev_grad_avgs, value=-1)
            torch._foreach_sqrt_(avg)
        else:
            avg = torch._foreach_sqrt(dev_square_avgs)
        torch._foreach_add_(avg, eps)

        if momentum > 0:
            torch._foreach_mul_(dev_bufs, momentum)
            torch._foreach_addcdiv_(dev_bufs, dev_grads, avg)
            torch._foreach_add_(dev_params, dev_bufs, alpha=-lr)
        else:
            torch._foreach_addcdiv_(dev_params, dev_grads, avg, value=-lr)


def _fused_rmsprop(
    params, grads, square_avgs, grad_avgs, momentum_buffers, steps,
    *, lr, alpha, eps, weight_decay, momentum, centered, maximize,
) -> None:
    """:func:`_multi_tensor_rmsprop`'s update, one kernel call per group (``optim._fused``): each
    element of the parameter, gradient, square average and (when used) gradient average and
    momentum buffer is read once and written once.  Falls back to :func:`_multi_tensor_rmsprop`
    (warning once) where the kernel does not apply."""
    grad_avgs = grad_avgs if centered else []
    momentum_buffers = momentum_buffers if momentum > 0 else []
    args = (params, grads, square_avgs, grad_avgs, momentum_buffers, lr, alpha, eps, weight_decay, momentum, maximize)
    if _fused.run("rmsprop_", *args):
        increment_steps(steps)
        return
    _multi_tensor_rmsprop(
        params, grads, square_avgs, grad_avgs, momentum_buffers, steps, lr=lr, alpha=alpha, eps=eps,
        weight_decay=weight_decay, momentum=momentum, centered=centered, maximize=maximize,
    )
