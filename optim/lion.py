"""Lion: the sign of an interpolated momentum (Chen et al., 2023)."""

from __future__ import annotations

import torch

from optim._base import Optimizer, dense_grad, group_tensors, zeros_like
from optim._docs import with_arg_docs
from optim._validate import check_betas, check_ge

__all__ = ["Lion"]


@with_arg_docs
class Lion(Optimizer):
    r"""Lion (EvoLved Sign Momentum), Algorithm 2 of the paper.

    .. math::
        c_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        \theta_t &= \theta_{t-1} - \eta_t \left(\operatorname{sign}(c_t) + \lambda \theta_{t-1}\right) \\
        m_t &= \beta_2 m_{t-1} + (1 - \beta_2) g_t

    with :math:`m_0 = 0` and :math:`g_t \to -g_t` when maximizing.  Every coordinate moves by
    exactly ``lr`` (or 0), so the paper advises an ``lr`` 3-10x smaller and a ``weight_decay``
    3-10x larger than for AdamW; the decay is decoupled and scaled by ``lr``.

    Args:
        {params}
        lr (float, optional): learning rate :math:`\eta` (default: 1e-4).
        betas (Tuple[float, float], optional): :math:`\beta_1` interpolates the update direction,
            :math:`\beta_2` tracks the momentum (default: (0.9, 0.99)).
        weight_decay (float, optional): decoupled weight decay :math:`\lambda` (default: 0).
        {maximize}
        {foreach}

    State per parameter: ``exp_avg`` (:math:`m`).

    Example:
        >>> opt = Lion(model.parameters(), lr=1e-4, weight_decay=1e-2)
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()
        >>> opt.zero_grad()

    Reference:
        X. Chen, C. Liang, D. Huang, E. Real et al., "Symbolic Discovery of Optimization
        Algorithms", NeurIPS 2023, arXiv:2302.06675.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ):
        check_ge("lr", lr)
        check_betas(betas)
        check_ge("weight_decay", weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, maximize=maximize, foreach=foreach)
        super().__init__(params, defaults)

    def _init_group(self, group):
        params, grads, exp_avgs = [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            grads.append(dense_grad(p, "Lion"))
            state = self.state[p]
            if "exp_avg" not in state:
                state["exp_avg"] = zeros_like(p)
            params.append(p)
            exp_avgs.append(state["exp_avg"])
        return params, grads, exp_avgs

    def _hyperparameters(self, group):
        beta1, beta2 = group["betas"]
        return dict(
            lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], maximize=group["maximize"]
        )

    def _update_functions(self):
        return _single_tensor_lion, _multi_tensor_lion


def _single_tensor_lion(params, grads, exp_avgs, *, lr, beta1, beta2, weight_decay, maximize):
    for param, grad, exp_avg in zip(params, grads, exp_avgs):
        if maximize:
            grad = -grad
        if weight_decay != 0:
            param.mul_(1 - lr * weight_decay)
        direction = exp_avg.mul(beta1).add_(grad, alpha=1 - beta1).sign_()
        param.add_(direction, alpha=-lr)
        exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)


def _multi_tensor_lion(params, grads, exp_avgs, *, lr, beta1, beta2, weight_decay, maximize):
    for device_params, device_grads, device_exp_avgs in group_tensors(params, grads, exp_avgs).values():
        if maximize:
            device_grads = torch._foreach_neg(device_grads)
        if weight_decay != 0:
            torch._foreach_mul_(device_params, 1 - lr * weight_decay)
        directions = torch._foreach_mul(device_exp_avgs, beta1)
        torch._foreach_add_(directions, device_grads, alpha=1 - beta1)
        torch._foreach_sign_(directions)
        torch._foreach_add_(device_params, directions, alpha=-lr)
        torch._foreach_mul_(device_exp_avgs, beta2)
        torch._foreach_add_(device_exp_avgs, device_grads, alpha=1 - beta2)
