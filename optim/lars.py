"""LARS: SGD with momentum and a per-layer local learning rate (You et al., 2017)."""

from __future__ import annotations

import torch

from optim._base import Optimizer, dense_grad, group_tensors, zeros_like
from optim._docs import with_arg_docs
from optim._validate import check_ge, check_gt, check_range

__all__ = ["LARS"]


@with_arg_docs
class LARS(Optimizer):
    r"""LARS (Layer-wise Adaptive Rate Scaling), Algorithm 1 of the paper.

    For every parameter tensor (a "layer") :math:`w`:

    .. math::
        \lambda &= \eta \, \frac{\lVert w_t \rVert}{\lVert g_t \rVert + \beta \lVert w_t \rVert + \epsilon} \\
        v_{t+1} &= m \, v_t + \gamma_t \, \lambda \, (g_t + \beta w_t) \\
        w_{t+1} &= w_t - v_{t+1}

    with :math:`v_0 = 0`: the momentum accumulates the already scaled step, so a learning-rate
    change affects only new contributions.  :math:`\gamma_t` is ``lr``; the paper's polynomial
    decay :math:`\gamma_t = \gamma_0 (1 - t/T)^2` is an lr scheduler's job (e.g.
    ``torch.optim.lr_scheduler.PolynomialLR(opt, T, power=2)``).  Where :math:`\lVert w \rVert`
    or :math:`\lVert g \rVert` is 0 the local rate :math:`\lambda` is 1, as in the common
    implementations (NVIDIA's LARC, timm): a zero-initialised layer would otherwise never move.
    ``exclude_1d`` also sets :math:`\lambda = 1` for biases and normalisation weights (tensors
    with at most one dimension), the usual practice for large-batch training; to exempt them
    from weight decay too, put them in a param group with ``weight_decay=0``.
    :math:`g_t \to -g_t` when maximizing.

    Since :math:`\lambda` already carries the factor :math:`\eta \lVert w \rVert / \lVert g \rVert`,
    ``lr`` is the paper's global rate :math:`\gamma` (of order 1 and more for large batches),
    not an SGD learning rate.

    Args:
        {params}
        lr (float, optional): global learning rate :math:`\gamma` (default: 1.0).
        momentum (float, optional): momentum :math:`m` in [0, 1) (default: 0.9).
        weight_decay (float, optional): weight decay :math:`\beta`, added to the gradient and to
            the denominator of :math:`\lambda` (default: 0).
        trust_coefficient (float, optional): the LARS coefficient :math:`\eta` (default: 1e-3).
        eps (float, optional): added to the denominator of :math:`\lambda` (default: 1e-8).
        exclude_1d (bool, optional): no layer-wise adaptation for tensors with ``ndim <= 1``
            (default: False).
        {maximize}
        {foreach}

    State per parameter: ``momentum_buffer`` (:math:`v`), when ``momentum`` is not 0.

    Example:
        >>> opt = LARS(model.parameters(), lr=2.0, momentum=0.9, weight_decay=5e-4)
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()
        >>> opt.zero_grad()

    Reference:
        Y. You, I. Gitman, B. Ginsburg, "Large Batch Training of Convolutional Networks",
        arXiv:1708.03888, 2017.
    """

    def __init__(
        self,
        params,
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 1e-3,
        eps: float = 1e-8,
        exclude_1d: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ):
        check_ge("lr", lr)
        check_range("momentum", momentum, 0.0, 1.0)
        check_ge("weight_decay", weight_decay)
        check_gt("trust_coefficient", trust_coefficient)
        check_ge("eps", eps)
        defaults = dict(
            lr=lr, momentum=momentum, weight_decay=weight_decay, trust_coefficient=trust_coefficient, eps=eps,
            exclude_1d=exclude_1d, maximize=maximize, foreach=foreach,
        )
        super().__init__(params, defaults)

    def _init_group(self, group):
        params, grads, buffers = [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            grads.append(dense_grad(p, "LARS"))
            state = self.state[p]
            if group["momentum"] != 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = zeros_like(p)
            params.append(p)
            buffers.append(state.get("momentum_buffer"))
        return params, grads, buffers

    def _hyperparameters(self, group):
        return dict(
            lr=group["lr"], momentum=group["momentum"], weight_decay=group["weight_decay"],
            trust_coefficient=group["trust_coefficient"], eps=group["eps"], exclude_1d=group["exclude_1d"],
            maximize=group["maximize"],
        )

    def _update_functions(self):
        return _single_tensor_lars, _multi_tensor_lars


def _local_lr(weight_norm, grad_norm, *, weight_decay, trust_coefficient, eps):
    """The paper's local rate, or 1 where either norm is 0 (kept on the device: no host sync)."""
    scaled = trust_coefficient * weight_norm / (grad_norm + weight_decay * weight_norm + eps)
    usable = (weight_norm > 0) & (grad_norm > 0)
    return torch.where(usable, scaled, torch.ones_like(scaled))


def _single_tensor_lars(
    params, grads, buffers, *, lr, momentum, weight_decay, trust_coefficient, eps, exclude_1d, maximize
):
    for param, grad, buffer in zip(params, grads, buffers):
        if maximize:
            grad = -grad
        if exclude_1d and param.ndim <= 1:
            scale = lr
        else:
            local = _local_lr(
                torch.linalg.vector_norm(param), torch.linalg.vector_norm(grad),
                weight_decay=weight_decay, trust_coefficient=trust_coefficient, eps=eps,
            )
            scale = local * lr
        step = grad.add(param, alpha=weight_decay) if weight_decay != 0 else grad.clone()
        step.mul_(scale)
        if momentum != 0:
            step = buffer.mul_(momentum).add_(step)
        param.sub_(step)


def _multi_tensor_lars(
    params, grads, buffers, *, lr, momentum, weight_decay, trust_coefficient, eps, exclude_1d, maximize
):
    for device_params, device_grads, device_buffers in group_tensors(params, grads, buffers).values():
        if maximize:
            device_grads = torch._foreach_neg(device_grads)
        local = _local_lr(
            torch.stack(torch._foreach_norm(device_params)), torch.stack(torch._foreach_norm(device_grads)),
            weight_decay=weight_decay, trust_coefficient=trust_coefficient, eps=eps,
        )
        if exclude_1d:
            excluded = torch.tensor([p.ndim <= 1 for p in device_params], device=local.device)
            local = torch.where(excluded, torch.ones_like(local), local)
        scales = (local * lr).unbind()
        if weight_decay != 0:
            steps = torch._foreach_add(device_grads, device_params, alpha=weight_decay)
            torch._foreach_mul_(steps, scales)
        else:
            steps = torch._foreach_mul(device_grads, scales)
        if momentum != 0:
            torch._foreach_mul_(device_buffers, momentum)
            torch._foreach_add_(device_buffers, steps)
            steps = device_buffers
        torch._foreach_sub_(device_params, steps)
