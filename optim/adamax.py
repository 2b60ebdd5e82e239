"""Adamax: Adam with the second moment replaced by an exponentially weighted infinity norm."""

from __future__ import annotations

import torch

from optim._base import default_foreach, group_tensors, to_scalar
from optim.adam import (
    _check_adam_args,
    _dense_grad,
    _float_betas,
    _increment_steps,
    _new_step,
    _real,
    _reject_unsupported,
    _run_closure,
    _steps_from_numbers,
    _with_arg_docs,
)


class Adamax(torch.optim.Optimizer):
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
        _check_adam_args(lr, betas, eps, weight_decay)
        _reject_unsupported(differentiable=differentiable, capturable=capturable)
        defaults = dict(
            lr=lr,
            betas=_float_betas(betas),
            eps=eps,
            weight_decay=weight_decay,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
        )
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in (("foreach", None), ("maximize", False), ("differentiable", False),
                               ("capturable", False)):
                group.setdefault(key, value)
        _steps_from_numbers(self, "step")

    def _init_group(self, group):
        params, grads, exp_avgs, exp_infs, steps = [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            params.append(p)
            grads.append(_dense_grad(p, "Adamax"))
            state = self.state[p]
            if not state:
                state["step"] = _new_step()
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_inf"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            exp_avgs.append(state["exp_avg"])
            exp_infs.append(state["exp_inf"])
            steps.append(state["step"])
        return params, grads, exp_avgs, exp_infs, steps

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step; ``closure`` re-evaluates the model and returns the loss."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            params, grads, exp_avgs, exp_infs, steps = self._init_group(group)
            if not params:
                continue
            foreach = group["foreach"]
            update = _multi_tensor_adamax if (default_foreach(params) if foreach is None else foreach) \
                else _single_tensor_adamax
            beta1, beta2 = group["betas"]
            update(
                params, grads, exp_avgs, exp_infs, steps,
                eps=group["eps"],
                beta1=beta1,
                beta2=beta2,
                lr=float(to_scalar(group["lr"])),
                weight_decay=group["weight_decay"],
                maximize=group["maximize"],
            )
        return loss


Adamax.__doc__ = _with_arg_docs(Adamax.__doc__)


def _single_tensor_adamax(
    params, grads, exp_avgs, exp_infs, state_steps, *, eps, beta1, beta2, lr, weight_decay, maximize,
) -> None:
    for i, param in enumerate(params):
        grad = grads[i]
        owns_grad = maximize or weight_decay != 0  # then |g| + eps can be built in place
        if maximize:
            grad = -grad
        step_t = state_steps[i]
        step_t += 1
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)

        param, grad, exp_avg, exp_inf = _real([param, grad, exp_avgs[i], exp_infs[i]])
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
            _real(t) for t in (device_params, device_grads, device_exp_avgs, device_exp_infs)
        )
        owns_grads = maximize or weight_decay != 0
        if maximize:
            device_grads = torch._foreach_neg(device_grads)
        _increment_steps(device_steps)
        if weight_decay != 0:
            if maximize:
                torch._foreach_add_(device_grads, device_params, alpha=weight_decay)
            else:
                device_grads = torch._foreach_add(device_grads, device_params, alpha=weight_decay)

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
