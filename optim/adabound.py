"""AdaBound and AdaBoundW: Adam whose per-coordinate step is clipped into bounds that
converge to an SGD step size (Luo et al., 2019)."""

from __future__ import annotations

import math

import torch

from optim._base import Optimizer, dense_grad, group_tensors, to_scalar, zeros_like
from optim._docs import with_arg_docs
from optim._validate import check_betas, check_ge, check_gt

__all__ = ["AdaBound", "AdaBoundW"]

_RULE = r"""
    .. math::
        m_t &= \beta_1 m_{{t-1}} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{{t-1}} + (1 - \beta_2) g_t^2 \\
        \eta_l(t) &= \alpha^* \left(1 - \frac{{1}}{{\gamma t + 1}}\right), \qquad
        \eta_u(t) = \alpha^* \left(1 + \frac{{1}}{{\gamma t}}\right) \\
        \hat\eta_t &= \operatorname{{clip}}\!\left(
            \frac{{\alpha \sqrt{{1 - \beta_2^t}} / (1 - \beta_1^t)}}{{\sqrt{{v_t}} + \epsilon}},
            \eta_l(t), \eta_u(t)\right) \\
        \theta_t &= \theta_{{t-1}} - \hat\eta_t \odot m_t {decay}

    This is the authors' released implementation, which their experiments ran: it adds Adam's
    bias correction to Algorithm 2 of the paper and leaves out the paper's extra
    :math:`1/\sqrt{{t}}` factor.  ``amsbound`` replaces :math:`v_t` by its running maximum.  :math:`\alpha` is ``lr`` and
    :math:`\alpha^* = \text{{final\_lr}} \cdot \text{{lr}} / \text{{base\_lr}}`, where ``base_lr``
    is each group's ``lr`` when it was added: like the authors' code, an lr scheduler scales
    ``final_lr`` along with ``lr``.  ``base_lr`` is kept in the param group, so it is saved by
    ``state_dict``.  :math:`g_t \to -g_t` when maximizing.
"""

_ARGS = r"""
    Args:
        {params}
        lr (float, optional): Adam learning rate :math:`\alpha` (default: 1e-3).
        {betas} (default: (0.9, 0.999))
        final_lr (float, optional): the SGD step size the bounds converge to (default: 0.1).
        gamma (float, optional): convergence speed of the bounds, in (0, 1) (default: 1e-3).
        {eps} (default: 1e-8)
        {weight_decay}
        amsbound (bool, optional): use the running maximum of :math:`v_t` (default: False).
        {maximize}
        {foreach}

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq`` and, with ``amsbound``,
    ``max_exp_avg_sq``.
"""

_REFERENCE = """
    Reference:
        L. Luo, Y. Xiong, Y. Liu, X. Sun, "Adaptive Gradient Methods with Dynamic Bound of
        Learning Rate", ICLR 2019, arXiv:1902.09843; https://github.com/Luolc/AdaBound.
"""


@with_arg_docs
class AdaBound(Optimizer):
    __doc__ = (
        "AdaBound (and AMSBound with ``amsbound=True``).\n"
        + _RULE.format(decay="")
        + "\n    ``weight_decay`` adds :math:`\\lambda \\theta_{t-1}` to :math:`g_t` (L2 penalty).\n"
        + _ARGS
        + """
    Example:
        >>> opt = AdaBound(model.parameters(), lr=1e-3, final_lr=0.1)
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()
        >>> opt.zero_grad()
"""
        + _REFERENCE
    )

    _decoupled = False

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        final_lr: float = 0.1,
        gamma: float = 1e-3,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsbound: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ):
        # lr > 0 and gamma > 0: both are divided by (final_lr * lr / base_lr, 1 / (gamma * t)).
        check_gt("lr", lr)
        check_betas(betas)
        check_ge("final_lr", final_lr)
        if not 0.0 < gamma < 1.0:
            raise ValueError(f"Invalid gamma: {gamma} (must be in (0, 1))")
        check_ge("eps", eps)
        check_ge("weight_decay", weight_decay)
        defaults = dict(
            lr=lr, betas=tuple(betas), final_lr=final_lr, gamma=gamma, eps=eps, weight_decay=weight_decay,
            amsbound=amsbound, maximize=maximize, foreach=foreach,
        )
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        check_gt("lr", param_group.get("lr", self.defaults["lr"]))
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        group.setdefault("base_lr", group["lr"])

    def _init_group(self, group):
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = [], [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = dense_grad(p, type(self).__name__)
            state = self.state[p]
            if len(state) == 0:
                state["step"] = torch.tensor(0.0)
                state["exp_avg"] = zeros_like(p)
                state["exp_avg_sq"] = zeros_like(p)
            if group["amsbound"] and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = zeros_like(p)
            params.append(p)
            grads.append(grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            max_exp_avg_sqs.append(state.get("max_exp_avg_sq"))
            steps.append(state["step"])
        return params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps

    def _hyperparameters(self, group):
        beta1, beta2 = group["betas"]
        return dict(
            lr=group["lr"], final_lr=group["final_lr"] * group["lr"] / group["base_lr"], beta1=beta1, beta2=beta2,
            gamma=group["gamma"], eps=group["eps"], weight_decay=group["weight_decay"], decoupled=self._decoupled,
            amsbound=group["amsbound"], maximize=group["maximize"],
        )

    def _update_functions(self):
        return _single_tensor_adabound, _multi_tensor_adabound


@with_arg_docs
class AdaBoundW(AdaBound):
    __doc__ = (
        "AdaBoundW: AdaBound with decoupled weight decay (the authors' ``AdaBoundW``).\n"
        + _RULE.format(decay=r"- \lambda \theta_{t-1}")
        + """
    As in the authors' implementation the decay :math:`\\lambda` is applied as is, not scaled by
    ``lr``: each step shrinks the weights by the factor :math:`1 - \\lambda`, so useful values
    are small (1e-4 to 1e-6 for 1e3-1e5 steps).
"""
        + _ARGS.replace(
            "{weight_decay}", "weight_decay (float, optional): decoupled weight decay :math:`\\lambda` (default: 0)."
        )
        + """
    Example:
        >>> opt = AdaBoundW(model.parameters(), lr=1e-3, final_lr=0.1, weight_decay=5e-4)
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()
        >>> opt.zero_grad()
"""
        + _REFERENCE
    )

    _decoupled = True


def _bounds(final_lr: float, gamma: float, step: float) -> tuple[float, float]:
    return final_lr * (1 - 1 / (gamma * step + 1)), final_lr * (1 + 1 / (gamma * step))


def _single_tensor_adabound(
    params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, *,
    lr, final_lr, beta1, beta2, gamma, eps, weight_decay, decoupled, amsbound, maximize,
):
    for i, param in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        exp_avg, exp_avg_sq = exp_avgs[i], exp_avg_sqs[i]
        steps[i] += 1
        step = to_scalar(steps[i])
        if weight_decay != 0 and not decoupled:
            grad = grad.add(param, alpha=weight_decay)
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        if amsbound:
            torch.maximum(max_exp_avg_sqs[i], exp_avg_sq, out=max_exp_avg_sqs[i])
            denom = max_exp_avg_sqs[i].sqrt().add_(eps)
        else:
            denom = exp_avg_sq.sqrt().add_(eps)
        step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
        lower, upper = _bounds(final_lr, gamma, step)
        update = denom.reciprocal_().mul_(step_size).clamp_(lower, upper).mul_(exp_avg)
        if weight_decay != 0 and decoupled:
            param.mul_(1 - weight_decay)
        param.sub_(update)


def _multi_tensor_adabound(
    params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, *,
    lr, final_lr, beta1, beta2, gamma, eps, weight_decay, decoupled, amsbound, maximize,
):
    grouped = group_tensors(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps)
    for device_params, device_grads, device_exp_avgs, device_exp_avg_sqs, device_maxes, device_steps in (
        grouped.values()
    ):
        if maximize:
            device_grads = torch._foreach_neg(device_grads)
        # steps live on the CPU (like torch's non-capturable path): a plain loop is cheapest.
        for s in device_steps:
            s += 1
        step_values = [to_scalar(s) for s in device_steps]
        if weight_decay != 0 and not decoupled:
            device_grads = torch._foreach_add(device_grads, device_params, alpha=weight_decay)
        torch._foreach_mul_(device_exp_avgs, beta1)
        torch._foreach_add_(device_exp_avgs, device_grads, alpha=1 - beta1)
        torch._foreach_mul_(device_exp_avg_sqs, beta2)
        torch._foreach_addcmul_(device_exp_avg_sqs, device_grads, device_grads, value=1 - beta2)
        if amsbound:
            torch._foreach_maximum_(device_maxes, device_exp_avg_sqs)
            updates = torch._foreach_sqrt(device_maxes)
        else:
            updates = torch._foreach_sqrt(device_exp_avg_sqs)
        torch._foreach_add_(updates, eps)
        torch._foreach_reciprocal_(updates)
        torch._foreach_mul_(updates, [lr * math.sqrt(1 - beta2**t) / (1 - beta1**t) for t in step_values])
        bounds = [_bounds(final_lr, gamma, t) for t in step_values]
        torch._foreach_clamp_min_(updates, [low for low, _ in bounds])
        torch._foreach_clamp_max_(updates, [high for _, high in bounds])
        torch._foreach_mul_(updates, device_exp_avgs)
        if weight_decay != 0 and decoupled:
            torch._foreach_mul_(device_params, 1 - weight_decay)
        torch._foreach_sub_(device_params, updates)
