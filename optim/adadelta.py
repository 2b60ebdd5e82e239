"""Adadelta: steps sized by the ratio of running RMS of past updates to running RMS of gradients."""

from __future__ import annotations

from string import Template

import torch
from torch import Tensor
from torch.optim import Optimizer

from optim._base import ARG_DOCS, check_ge, check_range, default_foreach, group_tensors, to_scalar

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta: a unit-consistent Adagrad whose memory of past gradients decays.

    With :math:`g_t = \pm\nabla f(\theta_{t-1})` (negated when ``maximize``) and
    :math:`v_0 = u_0 = 0`:

    .. math::
        \begin{aligned}
            g_t &\leftarrow g_t + \lambda \theta_{t-1} \\
            v_t &\leftarrow \rho v_{t-1} + (1 - \rho) g_t^2 \\
            \Delta x_t &\leftarrow \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}} \, g_t \\
            u_t &\leftarrow \rho u_{t-1} + (1 - \rho) \Delta x_t^2 \\
            \theta_t &\leftarrow \theta_{t-1} - \gamma \Delta x_t
        \end{aligned}

    :math:`v` is ``square_avg`` and :math:`u` is ``acc_delta`` in the state.  The paper has no
    learning rate (:math:`\gamma = 1`, torch's default); it is kept to scale the step.

    Args:
        $params
        lr (float or Tensor, optional): factor :math:`\gamma` on the step (default: 1.0).
        rho (float, optional): decay :math:`\rho` of both running averages, in [0, 1] (default: 0.9).
        eps (float, optional): :math:`\epsilon` inside both square roots (default: 1e-6).
        $weight_decay
        $foreach
        $capturable
        $maximize
        $differentiable

    Example:
        >>> opt = Adadelta(model.parameters())
        >>> opt.zero_grad()
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()

    Reference:
        M. D. Zeiler, "ADADELTA: An Adaptive Learning Rate Method", arXiv:1212.5701, 2012.
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError(f"Invalid lr: a Tensor lr must have one element, got shape {tuple(lr.shape)}")
        check_ge("lr", lr)
        check_range("rho", rho, 0.0, 1.0, high_open=False)
        check_ge("eps", eps)
        check_ge("weight_decay", weight_decay)
        for flag, value in (("capturable", capturable), ("differentiable", differentiable)):
            if value:
                raise ValueError(f"Invalid {flag}: {flag}=True is not supported by Descent's Adadelta")
        defaults = dict(
            lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize, capturable=capturable,
            foreach=foreach, differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)
            group.setdefault("capturable", False)
        for s in self.state.values():
            if "step" in s and not torch.is_tensor(s["step"]):
                s["step"] = torch.tensor(float(s["step"]), dtype=_step_dtype())

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step; ``closure`` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            params, grads, square_avgs, acc_deltas, steps = [], [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Adadelta does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0, dtype=_step_dtype())
                    state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["acc_delta"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                params.append(_as_real(p))
                grads.append(_as_real(p.grad))
                square_avgs.append(_as_real(state["square_avg"]))
                acc_deltas.append(_as_real(state["acc_delta"]))
                steps.append(state["step"])
            if not params:
                continue

            foreach = group["foreach"]
            if foreach is None:
                foreach = default_foreach(params)
            update = _multi_tensor_adadelta if foreach else _single_tensor_adadelta
            update(
                params, grads, square_avgs, acc_deltas, steps,
                lr=to_scalar(group["lr"]), rho=group["rho"], eps=group["eps"],
                weight_decay=group["weight_decay"], maximize=group["maximize"],
            )
        return loss


if Adadelta.__doc__:  # None under python -OO
    Adadelta.__doc__ = Template(Adadelta.__doc__).safe_substitute(ARG_DOCS)


def _step_dtype() -> torch.dtype:
    # torch keeps 'step' in float64 only when that is the default dtype; match it for state_dict parity
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _as_real(t: Tensor) -> Tensor:
    # a complex coordinate adapts as two independent real ones, as in torch
    return torch.view_as_real(t) if t.is_complex() else t


def _single_tensor_adadelta(
    params: list[Tensor],
    grads: list[Tensor],
    square_avgs: list[Tensor],
    acc_deltas: list[Tensor],
    steps: list[Tensor],
    *,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """One Adadelta step, tensor by tensor."""
    for param, grad, square_avg, acc_delta, step_t in zip(params, grads, square_avgs, acc_deltas, steps):
        step_t += 1
        grad = -grad if maximize else grad
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)
        square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
        std = square_avg.add(eps).sqrt_()
        delta = acc_delta.add(eps).sqrt_().div_(std).mul_(grad)
        acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        param.add_(delta, alpha=-lr)


def _multi_tensor_adadelta(
    params: list[Tensor],
    grads: list[Tensor],
    square_avgs: list[Tensor],
    acc_deltas: list[Tensor],
    steps: list[Tensor],
    *,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """One Adadelta step over ``torch._foreach_*`` kernels, per (device, dtype) group."""
    grouped = group_tensors(params, grads, square_avgs, acc_deltas, steps)
    for dev_params, dev_grads, dev_square_avgs, dev_acc_deltas, dev_steps in grouped.values():
        _increment(dev_steps)
        owned = False  # whether dev_grads is our temporary (safe to modify in place)
        if maximize:
            dev_grads = torch._foreach_neg(dev_grads)
            owned = True
        if weight_decay != 0:
            if owned:
                torch._foreach_add_(dev_grads, dev_params, alpha=weight_decay)
            else:
                dev_grads = torch._foreach_add(dev_grads, dev_params, alpha=weight_decay)

        torch._foreach_mul_(dev_square_avgs, rho)
        torch._foreach_addcmul_(dev_square_avgs, dev_grads, dev_grads, value=1 - rho)
        std = torch._foreach_add(dev_square_avgs, eps)
        torch._foreach_sqrt_(std)

        deltas = torch._foreach_add(dev_acc_deltas, eps)
        torch._foreach_sqrt_(deltas)
        torch._foreach_div_(deltas, std)
        torch._foreach_mul_(deltas, dev_grads)

        torch._foreach_mul_(dev_acc_deltas, rho)
        torch._foreach_addcmul_(dev_acc_deltas, deltas, deltas, value=1 - rho)
        torch._foreach_add_(dev_params, deltas, alpha=-lr)


def _increment(steps: list[Tensor]) -> None:
    # CPU step counters: one wrapped tensor for all instead of wrapping the 1 per counter
    if steps[0].is_cpu:
        torch._foreach_add_(steps, torch.tensor(1.0), alpha=1.0)
    else:
        torch._foreach_add_(steps, 1)
