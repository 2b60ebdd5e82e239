"""NAdam: Adam with Nesterov momentum and Dozat's momentum-decay schedule (NAdamW when decoupled)."""

from __future__ import annotations

import torch

from optim._base import (
    Optimizer,
    dense_grad,
    float_betas,
    group_tensors,
    increment_steps,
    new_step,
    real_views,
    step_dtype,
    to_scalar,
    zeros_like,
)
from optim._docs import with_arg_docs
from optim._validate import check_ge, reject_unsupported
from optim.adam import check_adam_args, decayed_grad, foreach_decayed_grads


@with_arg_docs
class NAdam(Optimizer):
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
        check_adam_args(lr, betas, eps, weight_decay)
        check_ge("momentum_decay", momentum_decay)
        reject_unsupported(capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr, betas=float_betas(betas), eps=eps, weight_decay=weight_decay,
            momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable,
        )
        super().__init__(params, defaults)

    _group_defaults = dict(
        maximize=False, foreach=None, capturable=False, differentiable=False, decoupled_weight_decay=False
    )
    _counters = ("step", "mu_product")

    def __setstate__(self, state):
        super().__setstate__(state)
        # load_state_dict casts every non-'step' state tensor to the parameter's dtype, so a float64
        # model would continue its mu_product in float64 after a reload, not in the float32 an
        # uninterrupted run uses; keep it a counter like 'step' so a resumed run is bit-identical.
        for p_state in self.state.values():
            mu_product = p_state.get("mu_product")
            if torch.is_tensor(mu_product) and mu_product.dtype != step_dtype():
                p_state["mu_product"] = mu_product.to(step_dtype())

    def _init_group(self, group):
        params, grads, exp_avgs, exp_avg_sqs, mu_products, steps = [], [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            params.append(p)
            grads.append(dense_grad(p, "NAdam"))
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["mu_product"] = torch.tensor(1.0, dtype=step_dtype())
                state["exp_avg"] = zeros_like(p)
                state["exp_avg_sq"] = zeros_like(p)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            mu_products.append(state["mu_product"])
            steps.append(state["step"])
        return params, grads, exp_avgs, exp_avg_sqs, mu_products, steps

    def _hyperparameters(self, group):
        beta1, beta2 = group["betas"]
        return dict(
            beta1=beta1, beta2=beta2, lr=float(to_scalar(group["lr"])), weight_decay=group["weight_decay"],
            momentum_decay=group["momentum_decay"], eps=group["eps"],
            decoupled_weight_decay=group["decoupled_weight_decay"], maximize=group["maximize"],
        )

    def _update_functions(self):
        return _single_tensor_nadam, _multi_tensor_nadam


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
        step_t = state_steps[i]
        step_t += 1
        step = step_t.item()
        grad = decayed_grad(
            param, grads[i], lr=lr, weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )
        mu_product = mu_products[i]
        mu_product *= _momentum_schedule(beta1, momentum_decay, step)
        bias_correction2_sqrt, grad_coef, exp_avg_coef = _nadam_step_sizes(
            lr, beta1, beta2, momentum_decay, step, mu_product.item()
        )

        param, grad, exp_avg, exp_avg_sq = real_views([param, grad, exp_avgs[i], exp_avg_sqs[i]])
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
            real_views(t) for t in (device_params, device_grads, device_exp_avgs, device_exp_avg_sqs)
        )
        increment_steps(device_steps)
        device_grads = foreach_decayed_grads(
            device_params, device_grads, lr=lr, weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
        )

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
