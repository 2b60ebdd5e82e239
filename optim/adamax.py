"""Adamax: Adam with the second moment replaced by an exponentially weighted infinity norm."""

from __future__ import annotations

import torch

from optim._base import (
    Optimizer,
    dense_grad,
    float_betas,
    foreach_signed_grads,
    group_tensors,
    increment_steps,
    new_step,
    real_views,
    signed_grad,
    to_scalar,
    zeros_like,
)
from optim._docs import with_arg_docs
from optim._validate import reject_unsupported
from optim.adam import check_adam_args


@with_arg_docs
class Adamax(Optimizer):
    r"""Adamax, the infinity-norm variant of Adam.

    Update rule, for gradient :math:`g_t` (negated when ``maximize``) of parameters :math:`\theta`:

    .. math::
        g_t &\leftarrow g_t + \lambda\theta_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        u_t &= \max(\beta_2 u_{t-1},\ |g_t| + \epsilon) \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t} \frac{m_t}{u_t}

    Args:
        {params}
        lr (float or Tensor, optional): learning rate :math:`\gamma` (default: 2e-3).
        betas (Tuple[float, float], optional): :math:`(\beta_1, \beta_2)`, decay rates of the first
            moment and of the infinity norm, each in [0, 1) (default: (0.9, 0.999)).
        eps (float, optional): :math:`\epsilon`, added to :math:`|g_t|` so :math:`u_t > 0` (default: 1e-8).
        weight_decay (float, optional): L2 penalty :math:`\lambda` added to the gradient (default: 0).
        {foreach}
        {maximize}
        {differentiable}
        {capturable}

    Example:
        >>> opt = Adamax(model.parameters(), lr=2e-3)
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()

    Reference: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, section 7.1
    (https://arxiv.org/abs/1412.6980).
    """

    def __init__(
        self,
        params,
        lr: float | torch.Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        check_adam_args(lr, betas, eps, weight_decay)
        reject_unsupported(differentiable=differentiable, capturable=capturable)
        defaults = dict(
            lr=lr, betas=float_betas(betas), eps=eps, weight_decay=weight_decay, foreach=foreach,
            maximize=maximize, differentiable=differentiable, capturable=capturable,
        )
        super().__init__(params, defaults)

    _group_defaults = dict(foreach=None, maximize=False, differentiable=False, capturable=False)
    _counters = ("step",)


    def _init_group(self, group):
        params, grads, exp_avgs, exp_infs, steps = [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            params.append(p)
            grads.append(dense_grad(p, "Adamax"))
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["exp_avg"] = zeros_like(p)
                state["exp_inf"] = zeros_like(p)
            exp_avgs.append(state["exp_avg"])
            exp_infs.append(state["exp_inf"])
            steps.append(state["step"])
        return params, grads, exp_avgs, exp_infs, steps

    def _hyperparameters(self, group):
        beta1, beta2 = group["betas"]
        return dict(
            eps=group["eps"], beta1=beta1, beta2=beta2, lr=float(to_scalar(group["lr"])),
            weight_decay=group["weight_decay"], maximize=group["maximize"],
        )

    def _update_functions(self):
        return _single_tensor_adamax, _multi_tensor_adamax


def _single_tensor_adamax(
    params, grads, exp_avgs, exp_infs, state_steps, *, eps, beta1, beta2, lr, weight_decay, maximize,
) -> None:
    for i, param in enumerate(params):
        owns_grad = maximize or weight_decay != 0  # then |g| + eps can be built in place
        grad = signed_grad(param, grads[i], maximize=maximize, weight_decay=weight_decay)
        step_t = state_steps[i]
        step_t += 1

        param, grad, exp_avg, exp_inf = real_views([param, grad, exp_avgs[i], exp_infs[i]])
        exp_avg.lerp_(grad, 1 - beta1)
        abs_grad = grad.abs_() if owns_grad else grad.abs()
        torch.maximum(exp_inf.mul_(beta2), abs_grad.add_(eps), out=exp_inf)

        step_size = lr / (1 - beta1 ** step_t.item())
        param.addcdiv_(exp_avg, exp_inf, value=-step_size)


def _multi_tensor_adamax(
    params, grads, exp_avgs, exp_infs, state_steps, *, eps, beta1, beta2, lr, weight_decay, maximize,
) -> None:
    if not params:
        return
    for lists in group_tensors(params, grads, state_steps, exp_avgs, exp_infs).values():
        device_params, device_grads, device_steps, device_exp_avgs, device_exp_infs = lists
        device_params, device_grads, device_exp_avgs, device_exp_infs = (
            real_views(t) for t in (device_params, device_grads, device_exp_avgs, device_exp_infs)
        )
        increment_steps(device_steps)
        device_grads, owns_grads = foreach_signed_grads(
            device_params, device_grads, maximize=maximize, weight_decay=weight_decay
        )

        torch._foreach_lerp_(device_exp_avgs, device_grads, 1 - beta1)
        torch._foreach_mul_(device_exp_infs, beta2)
        if owns_grads:
            torch._foreach_abs_(device_grads)
        else:
            device_grads = torch._foreach_abs(device_grads)
        torch._foreach_add_(device_grads, eps)
        torch._foreach_maximum_(device_exp_infs, device_grads)
        del device_grads

        step_sizes = [-lr / (1 - beta1 ** s.item()) for s in device_steps]
        torch._foreach_addcdiv_(device_params, device_exp_avgs, device_exp_infs, step_sizes)
