"""NAdam: Adam with Nesterov momentum and Dozat's momentum-decay schedule (NAdamW when decoupled)."""

from __future__ import annotations

import torch

from optim._base import check_ge, default_foreach, group_tensors, to_scalar
from optim.adam import (
    _check_adam_args,
    _dense_grad,
    _float_betas,
    _increment_steps,
    _new_step,
    _real,
    _reject_unsupported,
    _run_closure,
    _scalar_dtype,
    _steps_from_numbers,
    _with_arg_docs,
)


class NAdam(torch.optim.Optimizer):
    r"""NAdam: Adam whose first-moment step looks ahead with Nesterov momentum.

    Update rule, for gradient :math:`g_t` (negated when ``maximize``) of parameters :math:`\theta`,
    momentum decay :math:`\psi`:

    .. math::
        g_t &\leftarrow g_t + \lambda\theta_{t-1}
            \quad\text{(or } \theta_{t-1} \leftarrow (1 - \gamma\lambda)\theta_{t-1}
            \text{ when decoupled)} \\
        \mu_t &= \beta_1 \big(1 - \tfrac12\, 0.96^{t\psi}\big), \qquad
        \mu_{t+1} = \beta_1 \big(1 - \tfrac12\, 0.96^{(t+1)\psi}\big) \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat m_t &= \frac{\mu_{t+1} m_t}{1 - \prod_{i=1}^{t+1}\mu_i}
            + \frac{(1 - \mu_t) g_t}{1 - \prod_{i=1}^{t}\mu_i} \\
        \theta_t &= \theta_{t-1} - \gamma \frac{\hat m_t}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}

    The running product :math:`\prod_{i \le t}\mu_i` is kept per parameter as state ``mu_product``.

    Args:
        {params}
        lr (float or Tensor, optional): learning rate :math:`\gamma` (default: 2e-3).
        betas (Tuple[float, float], optional): :math:`(\beta_1, \beta_2)`, each in [0, 1)
            (default: (0.9, 0.999)).
        eps (float, optional): :math:`\epsilon` (default: 1e-8).
        weight_decay (float, optional): :math:`\lambda` (default: 0).
        momentum_decay (float, optional): :math:`\psi`, how fast :math:`\mu_t` rises to
            :math:`\beta_1` (default: 4e-3).
        decoupled_weight_decay (bool, optional): decay the weights directly (NAdamW) instead of adding
            :math:`\lambda\theta` to the gradient (default: False).
        {foreach}
        {maximize}
        {capturable}
        {differentiable}

    Example:
        >>> opt = NAdam(model.parameters(), lr=2e-3, momentum_decay=4e-3)
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()

    Reference: Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop
    (https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ).
    """

    def __init__(
        self,
        params,
        lr: float | torch.Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_adam_args(lr, betas, eps, weight_decay)
        check_ge("momentum_decay", momentum_decay)
        _reject_unsupported(capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr,
            betas=_float_betas(betas),
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in (("maximize", False), ("foreach", None), ("capturable", False),
                               ("differentiable", False), ("decoupled_weight_decay", False)):
                group.setdefault(key, value)
        _steps_from_numbers(self, "step", "mu_product")
        # load_state_dict casts every non-'step' state tensor to the parameter's dtype, so a float64
        # model would continue its mu_product in float64 after a reload, not in the float32 an
        # uninterrupted run uses; keep it a counter like 'step' so a resumed run is bit-identical.
        for p_state in self.state.values():
            mu_product = p_state.get("mu_product")
            if torch.is_tensor(mu_product) and mu_product.dtype != _scalar_dtype():
                p_state["mu_product"] = mu_product.to(_scalar_dtype())

    def _init_group(self, group):
        params, grads, exp_avgs, exp_avg_sqs, mu_products, steps = [], [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            params.append(p)
            grads.append(_dense_grad(p, "NAdam"))
            state = self.state[p]
            if not state:
                state["step"] = _new_step()
                state["mu_product"] = torch.tensor(1.0, dtype=_scalar_dtype())
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            mu_products.append(state["mu_product"])
            steps.append(state["step"])
        return params, grads, exp_avgs, exp_avg_sqs, mu_products, steps

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step; ``closure`` re-evaluates the model and returns the loss."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            params, grads, exp_avgs, exp_avg_sqs, mu_products, steps = self._init_group(group)
            if not params:
                continue
            foreach = group["foreach"]
            update = _multi_tensor_nadam if (default_foreach(params) if foreach is None else foreach) \
                else _single_tensor_nadam
            beta1, beta2 = group["betas"]
            update(
                params, grads, exp_avgs, exp_avg_sqs, mu_products, steps,
                beta1=beta1,
                beta2=beta2,
                lr=float(to_scalar(group["lr"])),
                weight_decay=group["weight_decay"],
                momentum_decay=group["momentum_decay"],
                eps=group["eps"],
                decoupled_weight_decay=group["decoupled_weight_decay"],
                maximize=group["maximize"],
            )
        return loss


NAdam.__doc__ = _with_arg_docs(NAdam.__doc__)


def _momentum_schedule(beta1: float, momentum_decay: float, step: float) -> float:
    """Dozat's mu_t: the momentum coefficient warms up from beta1/2 towards beta1."""
    return beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))


def _nadam_step_sizes(lr, beta1, beta2, momentum_decay, step, mu_product):
    """(eps scale, gradient coefficient, first-moment coefficient) for one parameter.

    The second moment's bias correction sqrt(1 - beta2^t) is folded into all three so the update
    needs sqrt(v) + eps * sqrt(bc2) instead of sqrt(v) / sqrt(bc2) + eps (one pass fewer)."""
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    mu = _momentum_schedule(beta1, momentum_decay, step)
    mu_next = _momentum_schedule(beta1, momentum_decay, step + 1)
    grad_coef = -lr * (1.0 - mu) / (1.0 - mu_product) * bias_correction2_sqrt
    exp_avg_coef = -lr * mu_next / (1.0 - mu_product * mu_next) * bias_correction2_sqrt
    return bias_correction2_sqrt, grad_coef, exp_avg_coef


def _single_tensor_nadam(
    params, grads, exp_avgs, exp_avg_sqs, mu_products, state_steps,
    *, beta1, beta2, lr, weight_decay, momentum_decay, eps, decoupled_weight_decay, maximize,
) -> None:
    for i, param in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        step_t = state_steps[i]
        step_t += 1
        step = step_t.item()

        if weight_decay != 0:
            if decoupled_weight_decay:
                param.mul_(1 - lr * weight_decay)
            else:
                grad = grad.add(param, alpha=weight_decay)

        mu_product = mu_products[i]
        mu_product *= _momentum_schedule(beta1, momentum_decay, step)
        bias_correction2_sqrt, grad_coef, exp_avg_coef = _nadam_step_sizes(
            lr, beta1, beta2, momentum_decay, step, mu_product.item()
        )

        param, grad, exp_avg, exp_avg_sq = _real([param, grad, exp_avgs[i], exp_avg_sqs[i]])
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = exp_avg_sq.sqrt().add_(eps * bias_correction2_sqrt)
        param.addcdiv_(grad, denom, value=grad_coef)
        param.addcdiv_(exp_avg, denom, value=exp_avg_coef)


def _multi_tensor_nadam(
    params, grads, exp_avgs, exp_avg_sqs, mu_products, state_steps,
    *, beta1, beta2, lr, weight_decay, momentum_decay, eps, decoupled_weight_decay, maximize,
) -> None:
    if not params:
        return
    grouped = group_tensors(params, grads, state_steps, mu_products, exp_avgs, exp_avg_sqs)
    for lists in grouped.values():
        device_params, device_grads, device_steps, device_mu_products, device_exp_avgs, device_exp_avg_sqs = lists
        device_params, device_grads, device_exp_avgs, device_exp_avg_sqs = (
            _real(t) for t in (device_params, device_grads, device_exp_avgs, device_exp_avg_sqs)
        )
        if maximize:
            device_grads = torch._foreach_neg(device_grads)
        _increment_steps(device_steps)

        if weight_decay != 0:
            if decoupled_weight_decay:
                torch._foreach_mul_(device_params, 1 - lr * weight_decay)
            elif maximize:  # the negated gradients are already our own copy
                torch._foreach_add_(device_grads, device_params, alpha=weight_decay)
            else:
                device_grads = torch._foreach_add(device_grads, device_params, alpha=weight_decay)

        steps = [s.item() for s in device_steps]
        torch._foreach_mul_(device_mu_products, [_momentum_schedule(beta1, momentum_decay, s) for s in steps])
        sizes = [
            _nadam_step_sizes(lr, beta1, beta2, momentum_decay, s, mp.item())
            for s, mp in zip(steps, device_mu_products)
        ]

        torch._foreach_lerp_(device_exp_avgs, device_grads, 1 - beta1)
        torch._foreach_mul_(device_exp_avg_sqs, beta2)
        torch._foreach_addcmul_(device_exp_avg_sqs, device_grads, device_grads, 1 - beta2)
        denom = torch._foreach_sqrt(device_exp_avg_sqs)
        torch._foreach_add_(denom, [eps * b2 for b2, _, _ in sizes])
        torch._foreach_addcdiv_(device_params, device_grads, denom, [g for _, g, _ in sizes])
        torch._foreach_addcdiv_(device_params, device_exp_avgs, denom, [m for _, _, m in sizes])
