"""LAMB: Adam's step rescaled per layer by a trust ratio (You et al., 2019)."""

from __future__ import annotations

import torch

from optim import _fused
from optim._base import Optimizer, dense_grad, group_tensors, to_scalar, zeros_like
from optim._docs import with_arg_docs
from optim._validate import check_betas, check_ge

__all__ = ["LAMB"]


@with_arg_docs
class LAMB(Optimizer):
    r"""LAMB (Layer-wise Adaptive Moments optimizer for Batch training), Algorithm 2 of the paper.

    For every parameter tensor (a "layer"):

    .. math::
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat m_t &= m_t / (1 - \beta_1^t), \qquad \hat v_t = v_t / (1 - \beta_2^t) \\
        r_t &= \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} + \lambda \theta_{t-1} \\
        \theta_t &= \theta_{t-1} - \eta \, \frac{\phi(\lVert \theta_{t-1} \rVert)}{\lVert r_t \rVert} \, r_t

    with bias correction always on (as in the paper's Algorithm 2), :math:`\phi` the identity,
    and the trust ratio :math:`\lVert \theta \rVert / \lVert r \rVert` replaced by 1 where either
    norm is 0 (a zero-initialised layer, or no update).  The weight decay is decoupled: it
    enters :math:`r_t`, so it is scaled by the trust ratio and ``lr``.  :math:`g_t \to -g_t`
    when maximizing.

    Args:
        {params}
        lr (float, optional): learning rate :math:`\eta` (default: 1e-3).
        {betas} (default: (0.9, 0.999))
        {eps} (default: 1e-6)
        weight_decay (float, optional): decoupled weight decay :math:`\lambda` (default: 0).
        {maximize}
        {foreach}
        fused (bool, optional): one compiled kernel call per group per step (``optim._fused``; CUDA
            tensors: Triton): two passes per tensor, the second after its norms are known
            (default: None, the foreach/loop choice).

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq``.

    Example:
        >>> opt = LAMB(model.parameters(), lr=2e-3, weight_decay=1e-2)
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()
        >>> opt.zero_grad()

    Reference:
        Y. You, J. Li, S. Reddi, J. Hseu et al., "Large Batch Optimization for Deep Learning:
        Training BERT in 76 minutes", ICLR 2020, arXiv:1904.00962.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
    ):
        check_ge("lr", lr)
        check_betas(betas)
        check_ge("eps", eps)
        check_ge("weight_decay", weight_decay)
        _fused.check_flags(fused=fused, foreach=foreach)
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize, foreach=foreach,
            fused=fused,
        )
        super().__init__(params, defaults)

    def _init_group(self, group):
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = dense_grad(p, "LAMB")
            state = self.state[p]
            if len(state) == 0:
                state["step"] = torch.tensor(0.0)
                state["exp_avg"] = zeros_like(p)
                state["exp_avg_sq"] = zeros_like(p)
            params.append(p)
            grads.append(grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        return params, grads, exp_avgs, exp_avg_sqs, steps

    def _hyperparameters(self, group):
        beta1, beta2 = group["betas"]
        return dict(
            lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
            maximize=group["maximize"],
        )

    def _update_functions(self):
        return _single_tensor_lamb, _multi_tensor_lamb, _fused_lamb


def _trust_ratio(weight_norm: torch.Tensor, update_norm: torch.Tensor) -> torch.Tensor:
    """``||w|| / ||r||``, or 1 where either norm is 0 (kept on the device: no host sync)."""
    usable = (weight_norm > 0) & (update_norm > 0)
    return torch.where(usable, weight_norm / update_norm, torch.ones_like(weight_norm))


def _single_tensor_lamb(
    params, grads, exp_avgs, exp_avg_sqs, steps, *, lr, beta1, beta2, eps, weight_decay, maximize
):
    for param, grad, exp_avg, exp_avg_sq, step_t in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
        if maximize:
            grad = -grad
        step_t += 1
        step = to_scalar(step_t)
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = exp_avg_sq.div(1 - beta2**step).sqrt_().add_(eps)
        update = exp_avg.div(1 - beta1**step).div_(denom)
        if weight_decay != 0:
            update.add_(param, alpha=weight_decay)
        ratio = _trust_ratio(torch.linalg.vector_norm(param), torch.linalg.vector_norm(update))
        param.sub_(update.mul_(ratio), alpha=lr)


def _multi_tensor_lamb(
    params, grads, exp_avgs, exp_avg_sqs, steps, *, lr, beta1, beta2, eps, weight_decay, maximize
):
    grouped = group_tensors(params, grads, exp_avgs, exp_avg_sqs, steps)
    for device_params, device_grads, device_exp_avgs, device_exp_avg_sqs, device_steps in grouped.values():
        if maximize:
            device_grads = torch._foreach_neg(device_grads)
        # steps live on the CPU (like torch's non-capturable path): a plain loop is cheapest.
        for s in device_steps:
            s += 1
        step_values = [to_scalar(s) for s in device_steps]
        torch._foreach_mul_(device_exp_avgs, beta1)
        torch._foreach_add_(device_exp_avgs, device_grads, alpha=1 - beta1)
        torch._foreach_mul_(device_exp_avg_sqs, beta2)
        torch._foreach_addcmul_(device_exp_avg_sqs, device_grads, device_grads, value=1 - beta2)
        denoms = torch._foreach_div(device_exp_avg_sqs, [1 - beta2**t for t in step_values])
        torch._foreach_sqrt_(denoms)
        torch._foreach_add_(denoms, eps)
        updates = torch._foreach_div(device_exp_avgs, [1 - beta1**t for t in step_values])
        torch._foreach_div_(updates, denoms)
        if weight_decay != 0:
            torch._foreach_add_(updates, device_params, alpha=weight_decay)
        weight_norms = torch._foreach_norm(device_params)
        update_norms = torch._foreach_norm(updates)
        ratios = _trust_ratio(torch.stack(weight_norms), torch.stack(update_norms)).unbind()
        torch._foreach_mul_(updates, ratios)
        torch._foreach_sub_(device_params, updates, alpha=lr)


def _fused_lamb(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr, beta1, beta2, eps, weight_decay, maximize):
    r""":func:`_multi_tensor_lamb`'s update, one kernel call per group (``optim._fused``), two passes
    per tensor: the first updates the moments, stores the direction :math:`r` and sums
    :math:`\lVert\theta\rVert^2` and :math:`\lVert r\rVert^2` (in float64), the second steps
    along the stored :math:`r`; the foreach path makes about 14.  Falls back to :func:`_multi_tensor_lamb` (warning once) where
    the kernel does not apply."""
    step_values = [to_scalar(s) + 1 for s in steps]  # the counters are incremented once the kernel has run
    corrections = [1 - beta1**t for t in step_values], [1 - beta2**t for t in step_values]
    hyperparameters = (float(to_scalar(lr)), beta1, beta2, eps, weight_decay, maximize)
    if _fused.run("lamb_", params, grads, exp_avgs, exp_avg_sqs, *corrections, *hyperparameters):
        for s in steps:
            s += 1
        return
    _multi_tensor_lamb(
        params, grads, exp_avgs, exp_avg_sqs, steps, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
        weight_decay=weight_decay, maximize=maximize,
    )
