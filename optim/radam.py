"""RAdam: Adam whose adaptive step is switched on only once its variance is tractable."""

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
    to_scalar,
    zeros_like,
)
from optim._docs import with_arg_docs
from optim._validate import reject_unsupported
from optim.adam import check_adam_args, decayed_grad, foreach_decayed_grads

# The adaptive step is used only when the approximated SMA length rho_t exceeds this.  The paper
# states rho_t > 4, where r_t is defined but blows up as rho_t -> 4; torch (and so this, for parity)
# waits for rho_t > 5, like the authors' code (N_sma >= 5).
RHO_THRESHOLD = 5.0


@with_arg_docs
class RAdam(Optimizer):
    r"""RAdam: rectified Adam.

    Update rule, for gradient :math:`g_t` (negated when ``maximize``) of parameters :math:`\theta`:

    .. math::
        g_t &\leftarrow g_t + \lambda\theta_{t-1}
            \quad\text{(or } \theta_{t-1} \leftarrow (1 - \gamma\lambda)\theta_{t-1}
            \text{ when decoupled)} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \rho_\infty &= \frac{2}{1 - \beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t} \\
        r_t &= \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}} \\
        \theta_t &= \theta_{t-1} - \gamma \frac{m_t}{1 - \beta_1^t} \cdot
            \begin{cases} r_t \dfrac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon} & \rho_t > 5 \\
            1 & \text{otherwise} \end{cases}

    Args:
        {params}
        lr (float or Tensor, optional): learning rate :math:`\gamma` (default: 1e-3).
        betas (Tuple[float, float], optional): :math:`(\beta_1, \beta_2)`, each in [0, 1)
            (default: (0.9, 0.999)).
        eps (float, optional): :math:`\epsilon` (default: 1e-8).
        weight_decay (float, optional): :math:`\lambda` (default: 0).
        decoupled_weight_decay (bool, optional): decay the weights directly (RAdamW, as in the
            authors' code) instead of adding :math:`\lambda\theta` to the gradient (default: False).
        {foreach}
        {maximize}
        {capturable}
        {differentiable}

    Example:
        >>> opt = RAdam(model.parameters(), lr=1e-3)
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()

    Reference: Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020
    (https://arxiv.org/abs/1908.03265).
    """

    def __init__(
        self,
        params,
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_adam_args(lr, betas, eps, weight_decay)
        reject_unsupported(capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr, betas=float_betas(betas), eps=eps, weight_decay=weight_decay, maximize=maximize,
            foreach=foreach, capturable=capturable, decoupled_weight_decay=decoupled_weight_decay,
            differentiable=differentiable,
        )
        super().__init__(params, defaults)

    _group_defaults = dict(
        foreach=None, maximize=False, differentiable=False, decoupled_weight_decay=False, capturable=False
    )
    _counters = ("step",)


    def _init_group(self, group):
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            params.append(p)
            grads.append(dense_grad(p, "RAdam"))
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["exp_avg"] = zeros_like(p)
                state["exp_avg_sq"] = zeros_like(p)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        return params, grads, exp_avgs, exp_avg_sqs, steps

    def _hyperparameters(self, group):
        beta1, beta2 = group["betas"]
        return dict(
            beta1=beta1, beta2=beta2, lr=float(to_scalar(group["lr"])), weight_decay=group["weight_decay"],
            eps=group["eps"], decoupled_weight_decay=group["decoupled_weight_decay"],
            maximize=group["maximize"],
        )

    def _update_functions(self):
        return _single_tensor_radam, _multi_tensor_radam


def _radam_step_size(lr: float, beta1: float, beta2: float, step: float) -> tuple[bool, float]:
    """(rectified?, scalar multiplying the update) for one parameter at ``step``.

    Rectified: the update is ``scalar * m / (sqrt(v) + eps)``, the scalar holding lr, the first
    moment's bias correction, sqrt(1 - beta2^t) and r_t.  Otherwise it is ``scalar * m`` (SGD with
    bias-corrected momentum)."""
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    if rho_t > RHO_THRESHOLD:
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
        return True, -lr * rect * bias_correction2**0.5 / bias_correction1
    return False, -lr / bias_correction1


def _single_tensor_radam(
    params, grads, exp_avgs, exp_avg_sqs, state_steps,
    *, beta1, beta2, lr, weight_decay, eps, decoupled_weight_decay, maximize,
) -> None:
    for i, param in enumerate(params):
        step_t = state_steps[i]
        step_t += 1
        grad = decayed_grad(
            param, grads[i], lr=lr, weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )
        param, grad, exp_avg, exp_avg_sq = real_views([param, grad, exp_avgs[i], exp_avg_sqs[i]])
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)

        rectified, step_size = _radam_step_size(lr, beta1, beta2, step_t.item())
        if rectified:
            param.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(eps), value=step_size)
        else:
            param.add_(exp_avg, alpha=step_size)


def _multi_tensor_radam(
    params, grads, exp_avgs, exp_avg_sqs, state_steps,
    *, beta1, beta2, lr, weight_decay, eps, decoupled_weight_decay, maximize,
) -> None:
    if not params:
        return
    for lists in group_tensors(params, grads, state_steps, exp_avgs, exp_avg_sqs).values():
        device_params, device_grads, device_steps, device_exp_avgs, device_exp_avg_sqs = lists
        device_params, device_grads, device_exp_avgs, device_exp_avg_sqs = (
            real_views(t) for t in (device_params, device_grads, device_exp_avgs, device_exp_avg_sqs)
        )
        increment_steps(device_steps)
        device_grads = foreach_decayed_grads(
            device_params, device_grads, lr=lr, weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
        )

        torch._foreach_lerp_(device_exp_avgs, device_grads, 1 - beta1)
        torch._foreach_mul_(device_exp_avg_sqs, beta2)
        torch._foreach_addcmul_(device_exp_avg_sqs, device_grads, device_grads, 1 - beta2)
        del device_grads

        # Parameters skipped on a no-grad step lag behind, so one group can hold both kinds.
        rectified, plain = [], {}
        for i, s in enumerate(device_steps):
            is_rectified, step_size = _radam_step_size(lr, beta1, beta2, s.item())
            if is_rectified:
                rectified.append((i, step_size))
            else:
                plain.setdefault(step_size, []).append(i)

        if rectified:
            index = [i for i, _ in rectified]
            denom = torch._foreach_sqrt([device_exp_avg_sqs[i] for i in index])
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(
                [device_params[i] for i in index], [device_exp_avgs[i] for i in index], denom,
                [size for _, size in rectified],
            )
        for step_size, index in plain.items():
            torch._foreach_add_(
                [device_params[i] for i in index], [device_exp_avgs[i] for i in index], alpha=step_size
            )
