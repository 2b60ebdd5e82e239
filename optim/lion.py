"""Lion: the sign of an interpolated momentum (Chen et al., 2023)."""

from __future__ import annotations

import torch

from optim import _fused, quantization
from optim._base import Optimizer, dense_grad, group_tensors, to_scalar, zeros_like
from optim._docs import with_arg_docs
from optim._validate import check_betas, check_ge

__all__ = ["Lion", "Lion8bit"]


@quantization.with_state_bits_doc
@with_arg_docs
class Lion(quantization.QuantizedState, Optimizer):
    r"""Lion (EvoLved Sign Momentum), Algorithm 2 of the paper.

    .. math::
        c_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        \theta_t &= \theta_{t-1} - \eta_t \left(\operatorname{sign}(c_t) + \lambda \theta_{t-1}\right) \\
        m_t &= \beta_2 m_{t-1} + (1 - \beta_2) g_t

    with :math:`m_0 = 0` and :math:`g_t \to -g_t` when maximizing.  Every coordinate moves by
    exactly ``lr`` (or 0), so the paper advises an ``lr`` 3-10x smaller and a ``weight_decay``
    3-10x larger than for AdamW; the decay is decoupled and scaled by ``lr``.

    Args:
        {params}
        lr (float, optional): learning rate :math:`\eta` (default: 1e-4).
        betas (Tuple[float, float], optional): :math:`\beta_1` interpolates the update direction,
            :math:`\beta_2` tracks the momentum (default: (0.9, 0.99)).
        weight_decay (float, optional): decoupled weight decay :math:`\lambda` (default: 0).
        {maximize}
        {foreach}
        fused (bool, optional): one compiled kernel per group per step (``optim._fused``; CUDA tensors: Triton);
            parameters with 8-bit state keep their own path (default: None, the foreach/loop choice).

    State per parameter: ``exp_avg`` (:math:`m`).  A parameter group may set ``state_bits``:
    {state_bits}
    With 8 the state is ``exp_avg`` as uint8 codes and ``exp_avg_absmax``; :class:`Lion8bit` sets it
    for every group.

    Example:
        >>> opt = Lion(model.parameters(), lr=1e-4, weight_decay=1e-2)
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()
        >>> opt.zero_grad()

    Reference:
        X. Chen, C. Liang, D. Huang, E. Real et al., "Symbolic Discovery of Optimization
        Algorithms", NeurIPS 2023, arXiv:2302.06675.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
    ):
        check_ge("lr", lr)
        check_betas(betas)
        check_ge("weight_decay", weight_decay)
        _fused.check_flags(fused=fused, foreach=foreach)
        defaults = dict(
            lr=lr, betas=tuple(betas), weight_decay=weight_decay, maximize=maximize, foreach=foreach, fused=fused,
            **quantization.state_bits_default(self._state_bits),
        )
        super().__init__(params, defaults)

    def _eightbit_step(self, params, grads, states, **hyperparameters) -> None:
        _eightbit_lion(params, grads, states, **hyperparameters)

    def _init_group(self, group):
        """The lists of the parameters whose state is 32-bit; creates every missing state."""
        params, grads, exp_avgs = [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = dense_grad(p, "Lion")
            state = self.state[p]
            if "exp_avg" not in state:
                if quantization.wants_quantized_state(p, group):
                    quantization.init_moment(state, "exp_avg", p, signed=True)
                else:
                    state["exp_avg"] = zeros_like(p)
            if quantization.is_quantized(state, "exp_avg"):
                continue
            grads.append(grad)
            params.append(p)
            exp_avgs.append(state["exp_avg"])
        return params, grads, exp_avgs

    def _hyperparameters(self, group):
        beta1, beta2 = group["betas"]
        return dict(
            lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], maximize=group["maximize"]
        )

    def _update_functions(self):
        return _single_tensor_lion, _multi_tensor_lion, _fused_lion


class Lion8bit(Lion):
    """:class:`Lion` whose momentum is 8-bit (``state_bits=8`` in every parameter group): block-wise
    quantized uint8 codes with one float32 absmax per block of 2048, about 1 byte of state per
    parameter instead of 4; tensors under 4096 elements keep a 32-bit momentum.  Arguments as
    :class:`Lion`'s.

    Example:
        >>> opt = Lion8bit(model.parameters(), lr=1e-4, weight_decay=1e-2)

    Reference: Dettmers, Lewis, Shleifer & Zettlemoyer, "8-bit Optimizers via Block-wise
    Quantization", ICLR 2022 (https://arxiv.org/abs/2110.02861).
    """

    _state_bits = 8


def _single_tensor_lion(params, grads, exp_avgs, *, lr, beta1, beta2, weight_decay, maximize):
    for param, grad, exp_avg in zip(params, grads, exp_avgs):
        if maximize:
            grad = -grad
        if weight_decay != 0:
            param.mul_(1 - lr * weight_decay)
        direction = exp_avg.mul(beta1).add_(grad, alpha=1 - beta1).sign_()
        param.add_(direction, alpha=-lr)
        exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)


def _multi_tensor_lion(params, grads, exp_avgs, *, lr, beta1, beta2, weight_decay, maximize):
    for device_params, device_grads, device_exp_avgs in group_tensors(params, grads, exp_avgs).values():
        if maximize:
            device_grads = torch._foreach_neg(device_grads)
        if weight_decay != 0:
            torch._foreach_mul_(device_params, 1 - lr * weight_decay)
        directions = torch._foreach_mul(device_exp_avgs, beta1)
        torch._foreach_add_(directions, device_grads, alpha=1 - beta1)
        torch._foreach_sign_(directions)
        torch._foreach_add_(device_params, directions, alpha=-lr)
        torch._foreach_mul_(device_exp_avgs, beta2)
        torch._foreach_add_(device_exp_avgs, device_grads, alpha=1 - beta2)


def _eightbit_lion(params, grads, states, **hyperparameters):
    """Lion on an 8-bit momentum (``optim.quantization``), one parameter at a time: dequantize it,
    take :func:`_single_tensor_lion`'s step in float32 (float64 for a float64 parameter),
    quantize it again."""
    for param, grad, state in zip(params, grads, states):
        work = torch.promote_types(param.dtype, torch.float32)
        exp_avg = quantization.load_moment(state, "exp_avg", signed=True).to(work)
        _single_tensor_lion([param], [grad.to(work)], [exp_avg], **hyperparameters)
        quantization.store_moment(state, "exp_avg", exp_avg, signed=True)


def _fused_lion(params, grads, exp_avgs, *, lr, beta1, beta2, weight_decay, maximize):
    """:func:`_multi_tensor_lion`'s update, one kernel call per group (``optim._fused``): each
    element of the parameter, gradient and momentum is read once and written once.  Falls back to
    :func:`_multi_tensor_lion` (warning once) where the kernel does not apply."""
    if not _fused.run("lion_", params, grads, exp_avgs, float(to_scalar(lr)), beta1, beta2, weight_decay, maximize):
        _multi_tensor_lion(
            params, grads, exp_avgs, lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay, maximize=maximize,
        )
