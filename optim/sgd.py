"""Stochastic gradient descent: plain, full-batch, mini-batch, with momentum or Nesterov momentum."""

from __future__ import annotations

import torch
from torch import Tensor

from optim import _fused
from optim._base import Optimizer, foreach_signed_grads, group_tensors, signed_grad, to_scalar
from optim._docs import with_arg_docs
from optim._validate import check_ge, check_lr, reject_unsupported

__all__ = ["SGD"]


@with_arg_docs
class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum.

    Gradient descent (GD), mini-batch SGD and SGD with momentum are one algorithm; what
    changes is the gradient handed in (the full data set's for GD, a mini-batch's for SGD)
    and the momentum settings.  The update, with :math:`g_t = \pm\nabla f(\theta_{t-1})`
    (negated when ``maximize``):

    .. math::
        \begin{aligned}
            g_t &\leftarrow g_t + \lambda \theta_{t-1} \\
            b_t &\leftarrow \begin{cases} g_t & t = 1 \\ \mu b_{t-1} + (1 - \tau) g_t & t > 1 \end{cases} \\
            g_t &\leftarrow g_t + \mu b_t \ \text{(nesterov)} \quad\text{else}\quad g_t \leftarrow b_t \\
            \theta_t &\leftarrow \theta_{t-1} - \gamma g_t
        \end{aligned}

    with learning rate :math:`\gamma`, weight decay :math:`\lambda`, momentum :math:`\mu` and
    dampening :math:`\tau`; the momentum lines apply only when :math:`\mu \neq 0`.  As in torch
    the first momentum buffer is the gradient itself (not dampened), and the learning rate
    multiplies the buffer rather than entering it (Sutskever et al. put :math:`\gamma` inside).

    Worked example (plain GD): minimise :math:`f(x) = x^2 - 4x + 3` from :math:`x_1 = 0` with
    :math:`\gamma = 0.3`.  :math:`f'(0) = -4` gives :math:`x_2 = 0 - 0.3 \cdot (-4) = 1.2`;
    :math:`f'(1.2) = -1.6` gives :math:`x_3 = 1.2 + 0.48 = 1.68`, closing in on the minimum at 2
    with ever smaller steps because the slope shrinks.

    Args:
        {params}
        lr (float or Tensor, optional): learning rate (default: 1e-3).
        momentum (float, optional): momentum factor :math:`\mu` (default: 0).
        dampening (float, optional): dampening :math:`\tau` of the gradient entering the
            momentum buffer (default: 0).
        {weight_decay}
        nesterov (bool, optional): Nesterov momentum; needs ``momentum > 0`` and zero
            dampening (default: False).
        {maximize}
        {foreach}
        {differentiable}
        fused (bool, optional): one compiled kernel per group per step (``optim._fused``; CUDA tensors: Triton)
            (default: None, the foreach/loop choice).

    Example:
        >>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        >>> opt.zero_grad()
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()

    References:
        H. Robbins, S. Monro, "A Stochastic Approximation Method", Ann. Math. Stat. 1951.
        I. Sutskever, J. Martens, G. Dahl, G. Hinton, "On the importance of initialization and
        momentum in deep learning", ICML 2013 (Nesterov momentum).
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float | Tensor = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_lr(lr)
        check_ge("momentum", momentum)
        check_ge("dampening", dampening)
        check_ge("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Invalid nesterov: Nesterov momentum requires momentum > 0 and zero dampening")
        reject_unsupported(differentiable=differentiable)
        _fused.check_flags(fused=fused, foreach=foreach)
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
            maximize=maximize, foreach=foreach, differentiable=differentiable, fused=fused,
        )
        super().__init__(params, defaults)

    _group_defaults = dict(nesterov=False, maximize=False, foreach=None, differentiable=False, fused=None)

    def _init_group(self, group):
        params, grads, bufs = [], [], []
        with_momentum = group["momentum"] != 0
        for p in group["params"]:
            if p.grad is None:
                continue
            params.append(p)
            grads.append(p.grad)
            if with_momentum:
                bufs.append(self.state[p].get("momentum_buffer"))
        return params, grads, bufs

    def _use_foreach(self, group, lists):
        # foreach kernels take dense tensors only
        return super()._use_foreach(group, lists) and not any(g.is_sparse for g in lists[1])

    def _hyperparameters(self, group):
        return dict(
            lr=to_scalar(group["lr"]), weight_decay=to_scalar(group["weight_decay"]), momentum=group["momentum"],
            dampening=group["dampening"], nesterov=group["nesterov"], maximize=group["maximize"],
        )

    def _update_functions(self):
        return _single_tensor_sgd, _multi_tensor_sgd, _fused_sgd

    def _after_update(self, group, lists):
        if group["momentum"] != 0:
            # first steps create the buffers inside the update; store them
            params, _, bufs = lists
            for p, buf in zip(params, bufs):
                self.state[p]["momentum_buffer"] = buf



def _single_tensor_sgd(
    params, grads, momentum_buffers,
    *, lr, weight_decay, momentum, dampening, nesterov, maximize,
) -> None:
    """One SGD step, tensor by tensor; fills ``None`` entries of ``momentum_buffers`` in place."""
    for i, param in enumerate(params):
        grad = signed_grad(param, grads[i], maximize=maximize, weight_decay=weight_decay)
        if momentum != 0:
            buf = momentum_buffers[i]
            if buf is None:
                buf = momentum_buffers[i] = grad.detach().clone()
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - dampening)
            grad = grad.add(buf, alpha=momentum) if nesterov else buf
        param.add_(grad, alpha=-lr)


def _multi_tensor_sgd(
    params, grads, momentum_buffers,
    *, lr, weight_decay, momentum, dampening, nesterov, maximize,
) -> None:
    """One SGD step over ``torch._foreach_*`` kernels, per (device, dtype) group.

    ``p.grad`` is never written: a temporary is made only when maximize, weight decay or
    Nesterov need one, and later ops reuse it in place."""
    positions = list(range(len(params)))
    slots = momentum_buffers if momentum != 0 else [None] * len(params)
    for dev_params, dev_grads, dev_bufs, dev_positions in group_tensors(params, grads, slots, positions).values():
        dev_grads, owned = foreach_signed_grads(dev_params, dev_grads, maximize=maximize, weight_decay=weight_decay)
        if momentum != 0:
            if all(b is not None for b in dev_bufs):
                torch._foreach_mul_(dev_bufs, momentum)
                torch._foreach_add_(dev_bufs, dev_grads, alpha=1 - dampening)
            else:
                for j, buf in enumerate(dev_bufs):
                    if buf is None:
                        dev_bufs[j] = momentum_buffers[dev_positions[j]] = dev_grads[j].detach().clone()
                    else:
                        buf.mul_(momentum).add_(dev_grads[j], alpha=1 - dampening)
            if nesterov:
                if owned:
                    torch._foreach_add_(dev_grads, dev_bufs, alpha=momentum)
                else:
                    dev_grads = torch._foreach_add(dev_grads, dev_bufs, alpha=momentum)
            else:
                dev_grads = dev_bufs

        torch._foreach_add_(dev_params, dev_grads, alpha=-lr)


def _fused_sgd(
    params, grads, momentum_buffers,
    *, lr, weight_decay, momentum, dampening, nesterov, maximize,
) -> None:
    """:func:`_multi_tensor_sgd`'s update, one kernel call per group (``optim._fused``): each
    element of the parameter, gradient and momentum buffer is read once and written once; a
    missing buffer is allocated empty and the kernel writes the first step's gradient into it.
    Falls back to the foreach path (the loop for sparse gradients), warning once, where the
    kernel does not apply."""
    hyperparameters = dict(
        lr=lr, weight_decay=weight_decay, momentum=momentum, dampening=dampening, nesterov=nesterov,
        maximize=maximize,
    )
    with_momentum = momentum != 0
    first = [int(buf is None) for buf in momentum_buffers] if with_momentum else []
    bufs = [
        torch.empty_like(p, memory_format=torch.contiguous_format) if new else buf
        for p, buf, new in zip(params, momentum_buffers, first)
    ]
    if _fused.run("sgd_", params, grads, bufs, first, lr, weight_decay, momentum, dampening, nesterov, maximize):
        momentum_buffers[:] = bufs  # the first step's buffers, for _after_update to store
        return
    sparse = any(g.is_sparse for g in grads)
    (_single_tensor_sgd if sparse else _multi_tensor_sgd)(params, grads, momentum_buffers, **hyperparameters)
