"""Averaged SGD: SGD with a decaying step whose iterates are averaged (Polyak-Ruppert averaging)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from optim._base import (
    Optimizer,
    as_real,
    dense_grad,
    foreach_signed_grads,
    group_tensors,
    increment_steps,
    signed_grad,
    step_dtype,
    to_scalar,
    zeros_like,
)
from optim._docs import with_arg_docs
from optim._validate import check_ge, check_lr, reject_unsupported

__all__ = ["ASGD"]


@with_arg_docs
class ASGD(Optimizer):
    r"""Averaged stochastic gradient descent.

    SGD with a decaying step size :math:`\eta_t` and a shrinkage term, plus a running average
    :math:`\bar\theta` of the iterates that starts after ``t0`` steps; the average, not the last
    iterate, is the estimate with the good statistical properties.  With
    :math:`g_t = \pm\nabla f(\theta_{t-1})` (negated when ``maximize``), :math:`\eta_1 = \gamma`
    and :math:`\mu_1 = 1`:

    .. math::
        \begin{aligned}
            g_t &\leftarrow g_t + \lambda_{wd} \theta_{t-1} \\
            \theta_t &\leftarrow (1 - \lambda \eta_t) \theta_{t-1} - \eta_t g_t \\
            \bar\theta_t &\leftarrow \bar\theta_{t-1} + \mu_t (\theta_t - \bar\theta_{t-1}) \\
            \eta_{t+1} &\leftarrow \gamma / (1 + \lambda \gamma t)^{\alpha} \\
            \mu_{t+1} &\leftarrow 1 / \max(1, t - t_0)
        \end{aligned}

    So :math:`\bar\theta_t = \theta_t` until step :math:`t_0 + 1` and afterwards the plain mean
    of :math:`\theta_{t_0+2}, \ldots, \theta_t`.  The state keeps torch's layout (``step``,
    ``eta``, ``mu`` as 0-dim tensors in torch's scalar dtype, ``ax`` = :math:`\bar\theta`).
    :meth:`averaged_parameters` returns the averages and :meth:`swap_averaged` evaluates with them.
    Unlike torch, negative ``lambd``, ``alpha`` or ``t0`` are rejected.

    Args:
        {params}
        lr (float or Tensor, optional): initial step size :math:`\gamma` (default: 1e-2).
        lambd (float, optional): decay term :math:`\lambda` (default: 1e-4).
        alpha (float, optional): power :math:`\alpha` of the step-size decay (default: 0.75).
        t0 (float, optional): step after which averaging starts (default: 1e6).
        {weight_decay}
        {foreach}
        {maximize}
        {differentiable}
        {capturable}

    Example:
        >>> opt = ASGD(model.parameters(), lr=0.01, t0=100)
        >>> for x, y in batches:
        ...     opt.zero_grad()
        ...     loss_fn(model(x), y).backward()
        ...     opt.step()
        >>> with opt.swap_averaged():
        ...     validate(model)

    References:
        B. T. Polyak, A. B. Juditsky, "Acceleration of Stochastic Approximation by Averaging",
        SIAM J. Control Optim. 30(4), 1992.
        W. Xu, "Towards Optimal One Pass Large Scale Learning with Averaged Stochastic Gradient
        Descent", arXiv:1107.2490, 2011 (the step-size schedule).
    """

    def __init__(
        self,
        params,
        lr: float | Tensor = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        check_lr(lr)
        check_ge("lambd", lambd)
        check_ge("alpha", alpha)
        check_ge("t0", t0)
        check_ge("weight_decay", weight_decay)
        reject_unsupported(differentiable=differentiable, capturable=capturable)
        defaults = dict(
            lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
            maximize=maximize, differentiable=differentiable, capturable=capturable,
        )
        super().__init__(params, defaults)

    _group_defaults = dict(foreach=None, maximize=False, differentiable=False, capturable=False)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            for p in group["params"]:
                s = self.state.get(p)
                # load_state_dict casts eta and mu to the parameter's dtype; keep them in the scalar
                # dtype they were written in, so a resumed run rounds exactly like an uninterrupted one
                for key in ("step", "eta", "mu"):
                    if s and key in s:
                        s[key] = torch.as_tensor(s[key], dtype=step_dtype(), device=p.device).clone()

    def _init_group(self, group):
        params, grads, axs, mus, etas, steps = [], [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = dense_grad(p, "ASGD")
            state = self.state[p]
            if not state:
                state["step"] = torch.zeros((), dtype=step_dtype(), device=p.device)
                state["eta"] = torch.tensor(to_scalar(group["lr"]), dtype=step_dtype(), device=p.device)
                state["mu"] = torch.ones((), dtype=step_dtype(), device=p.device)
                state["ax"] = zeros_like(p)
            params.append(as_real(p))
            grads.append(as_real(grad))
            axs.append(as_real(state["ax"]))
            mus.append(state["mu"])
            etas.append(state["eta"])
            steps.append(state["step"])
        return params, grads, axs, mus, etas, steps

    def _hyperparameters(self, group):
        return dict(
            lr=to_scalar(group["lr"]), lambd=group["lambd"], alpha=group["alpha"], t0=group["t0"],
            weight_decay=group["weight_decay"], maximize=group["maximize"],
        )

    def _update_functions(self):
        return _single_tensor_asgd, _multi_tensor_asgd

    def _all_params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def averaged_parameters(self) -> list[Tensor]:
        """The averaged iterates :math:`\\bar\\theta` (the state's ``ax``), one per parameter in
        ``param_groups`` order; a parameter that was never stepped is its own average."""
        return [self.state[p]["ax"] if self.state.get(p) else p.detach() for p in self._all_params()]

    @contextmanager
    def swap_averaged(self) -> Iterator[None]:
        """Within the block the parameters hold their averages (for evaluation or export);
        on exit they get their current iterates back, so training continues unchanged."""
        params = self._all_params()
        averages = self.averaged_parameters()
        current = [p.detach().clone() for p in params]
        with torch.no_grad():
            torch._foreach_copy_(params, averages)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(params, current)



def _next_eta_mu(step: float, *, lr: float, lambd: float, alpha: float, t0: float) -> tuple[float, float]:
    return lr / ((1 + lambd * lr * step) ** alpha), 1 / max(1, step - t0)


def _single_tensor_asgd(
    params, grads, axs, mus, etas, steps,
    *, lr, lambd, alpha, t0, weight_decay, maximize,
) -> None:
    """One ASGD step, tensor by tensor."""
    for param, grad, ax, mu, eta, step_t in zip(params, grads, axs, mus, etas, steps):
        step_t += 1
        grad = signed_grad(param, grad, maximize=maximize, weight_decay=weight_decay)
        eta_value = eta.item()
        param.mul_(1 - lambd * eta_value)
        param.add_(grad, alpha=-eta_value)
        mu_value = mu.item()
        if mu_value != 1:
            ax.add_(param.sub(ax).mul_(mu_value))
        else:
            ax.copy_(param)
        new_eta, new_mu = _next_eta_mu(step_t.item(), lr=lr, lambd=lambd, alpha=alpha, t0=t0)
        eta.fill_(new_eta)
        mu.fill_(new_mu)


def _multi_tensor_asgd(
    params, grads, axs, mus, etas, steps,
    *, lr, lambd, alpha, t0, weight_decay, maximize,
) -> None:
    """One ASGD step over ``torch._foreach_*`` kernels, per (device, dtype) group.

    The shrinkage and gradient step are folded into one kernel:
    :math:`(1 - \\lambda\\eta)\\theta - \\eta g = \\theta - \\eta (g + \\lambda \\theta)`.
    The next eta is computed in float64 as in the single-tensor path (torch's foreach path
    computes it in the scalar dtype, float32 by default, and drifts from its own loop)."""
    grouped = group_tensors(params, grads, axs, mus, etas, steps)
    for dev_params, dev_grads, dev_axs, dev_mus, dev_etas, dev_steps in grouped.values():
        increment_steps(dev_steps)
        dev_grads, owned = foreach_signed_grads(dev_params, dev_grads, maximize=maximize, weight_decay=weight_decay)
        if owned:
            torch._foreach_add_(dev_grads, dev_params, alpha=lambd)
            direction = dev_grads
        else:
            direction = torch._foreach_add(dev_grads, dev_params, alpha=lambd)
        torch._foreach_addcmul_(dev_params, direction, dev_etas, value=-1)
        del direction

        # ax += mu (param - ax); not lerp: its tensor weight must share the params' dtype
        diff = torch._foreach_sub(dev_params, dev_axs)
        torch._foreach_addcmul_(dev_axs, diff, dev_mus)
        del diff

        for step_t, eta, mu in zip(dev_steps, dev_etas, dev_mus):
            new_eta, new_mu = _next_eta_mu(step_t.item(), lr=lr, lambd=lambd, alpha=alpha, t0=t0)
            eta.fill_(new_eta)
            mu.fill_(new_mu)
