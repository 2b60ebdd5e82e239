"""Rprop: per-coordinate step sizes that grow while the gradient's sign holds and shrink when it flips."""

from __future__ import annotations

import torch
from torch import Tensor

from optim._base import (
    Optimizer,
    as_real,
    dense_grad,
    group_tensors,
    increment_steps,
    new_step,
    to_scalar,
    zeros_like,
)
from optim._docs import with_arg_docs
from optim._validate import check_lr, reject_unsupported

__all__ = ["Rprop"]


@with_arg_docs
class Rprop(Optimizer):
    r"""Resilient backpropagation: only the sign of the gradient is used, with a step size per coordinate.

    With :math:`g_t = \pm\nabla f(\theta_{t-1})` (negated when ``maximize``), step sizes
    :math:`\Delta_0 = \gamma` and :math:`g_0 = 0`:

    .. math::
        \begin{aligned}
            \Delta_t &\leftarrow \operatorname{clip}\big(\Delta_{t-1} \cdot
                \begin{cases} \eta_+ & g_t g_{t-1} > 0 \\ \eta_- & g_t g_{t-1} < 0 \\ 1 & \text{else}
                \end{cases}, \ \Delta_{\min}, \Delta_{\max}\big) \\
            g_t &\leftarrow 0 \quad \text{where } g_t g_{t-1} < 0 \\
            \theta_t &\leftarrow \theta_{t-1} - \Delta_t \operatorname{sign}(g_t)
        \end{aligned}

    After a sign flip the coordinate rests for one step and its stored gradient is zeroed, without
    weight backtracking: the iRprop- variant of Igel and Hüsken, as torch implements it.  State: ``step``, ``prev`` (:math:`g_t`) and ``step_size``
    (:math:`\Delta_t`).  Unlike torch, negative ``step_sizes`` are rejected.  Meant for
    full-batch training: mini-batch noise flips signs at random.

    Args:
        {params}
        lr (float or Tensor, optional): initial step size :math:`\Delta_0` (default: 1e-2).
        etas (Tuple[float, float], optional): :math:`(\eta_-, \eta_+)` with
            :math:`0 < \eta_- < 1 < \eta_+` (default: (0.5, 1.2)).
        step_sizes (Tuple[float, float], optional): bounds :math:`(\Delta_{\min}, \Delta_{\max})`,
            both >= 0 (default: (1e-6, 50)).
        {capturable}
        {foreach}
        {maximize}
        {differentiable}

    Example:
        >>> opt = Rprop(model.parameters(), lr=0.01)
        >>> opt.zero_grad()
        >>> loss_fn(model(x_all), y_all).backward()
        >>> opt.step()

    Reference:
        M. Riedmiller, H. Braun, "A Direct Adaptive Method for Faster Backpropagation Learning:
        The RPROP Algorithm", IEEE International Conference on Neural Networks, 1993.
        C. Igel, M. Hüsken, "Improving the Rprop Learning Algorithm", NC 2000 (iRprop-).
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_lr(lr)
        if len(etas) != 2 or not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid etas: {etas} (must be (etaminus, etaplus) with 0 < etaminus < 1 < etaplus)")
        if len(step_sizes) != 2 or not (step_sizes[0] >= 0.0 and step_sizes[1] >= 0.0):
            raise ValueError(f"Invalid step_sizes: {step_sizes} (must be a (min, max) pair of values >= 0)")
        reject_unsupported(capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach, maximize=maximize,
            differentiable=differentiable, capturable=capturable,
        )
        super().__init__(params, defaults)

    _group_defaults = dict(foreach=None, maximize=False, differentiable=False, capturable=False)
    _counters = ("step",)

    def _init_group(self, group):
        params, grads, prevs, step_sizes, steps = [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = dense_grad(p, "Rprop")
            state = self.state[p]
            if not state:
                lr = to_scalar(group["lr"])
                state["step"] = new_step()
                state["prev"] = zeros_like(p)
                # a complex coordinate is two real ones, each with its own step size
                state["step_size"] = torch.full_like(grad, complex(lr, lr) if p.is_complex() else lr)
            params.append(as_real(p))
            grads.append(as_real(grad))
            prevs.append(as_real(state["prev"]))
            step_sizes.append(as_real(state["step_size"]))
            steps.append(state["step"])
        return params, grads, prevs, step_sizes, steps

    def _hyperparameters(self, group):
        (etaminus, etaplus), (step_size_min, step_size_max) = group["etas"], group["step_sizes"]
        return dict(
            etaminus=etaminus, etaplus=etaplus, step_size_min=step_size_min, step_size_max=step_size_max,
            maximize=group["maximize"],
        )

    def _update_functions(self):
        return _single_tensor_rprop, _multi_tensor_rprop



def _sign_to_factor_(sign: Tensor, etaminus: float, etaplus: float) -> Tensor:
    """Map sign(g_t g_{t-1}) in {1, -1, 0} to the step-size factor {etaplus, etaminus, 1}, in place."""
    # order matters: after the first fill no entry is 1 unless it was 0 (etaplus > 1, etaminus > 0)
    sign.masked_fill_(sign.gt(0), etaplus)
    sign.masked_fill_(sign.lt(0), etaminus)
    return sign.masked_fill_(sign.eq(0), 1)


def _single_tensor_rprop(
    params, grads, prevs, step_sizes, steps,
    *, etaminus, etaplus, step_size_min, step_size_max, maximize,
) -> None:
    """One Rprop step, tensor by tensor."""
    for param, grad, prev, step_size, step_t in zip(params, grads, prevs, step_sizes, steps):
        step_t += 1
        grad = -grad if maximize else grad
        factor = _sign_to_factor_(grad.mul(prev).sign_(), etaminus, etaplus)
        step_size.mul_(factor).clamp_(step_size_min, step_size_max)
        # a coordinate whose sign flipped rests this step and does not count as "same sign" next step
        grad = grad.masked_fill(factor.eq(etaminus), 0)
        param.addcmul_(grad.sign(), step_size, value=-1)
        prev.copy_(grad)


def _multi_tensor_rprop(
    params, grads, prevs, step_sizes, steps,
    *, etaminus, etaplus, step_size_min, step_size_max, maximize,
) -> None:
    """One Rprop step over ``torch._foreach_*`` kernels, per (device, dtype) group.

    ``prev`` is overwritten with the new gradient early and then used as its working copy,
    which saves a temporary per tensor."""
    grouped = group_tensors(params, grads, prevs, step_sizes, steps)
    for dev_params, dev_grads, dev_prevs, dev_step_sizes, dev_steps in grouped.values():
        increment_steps(dev_steps)
        factors = torch._foreach_mul(dev_grads, dev_prevs)
        if maximize:
            torch._foreach_neg_(factors)
        torch._foreach_copy_(dev_prevs, dev_grads)
        if maximize:
            torch._foreach_neg_(dev_prevs)
        torch._foreach_sign_(factors)
        for factor in factors:
            _sign_to_factor_(factor, etaminus, etaplus)

        torch._foreach_mul_(dev_step_sizes, factors)
        torch._foreach_clamp_min_(dev_step_sizes, step_size_min)
        torch._foreach_clamp_max_(dev_step_sizes, step_size_max)

        for prev, factor in zip(dev_prevs, factors):
            prev.masked_fill_(factor.eq(etaminus), 0)
        del factors
        torch._foreach_addcmul_(dev_params, torch._foreach_sign(dev_prevs), dev_step_sizes, value=-1)
