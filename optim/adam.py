"""Adam and AdamW, plus the weight-decay and check helpers the Adam family (Adamax, NAdam, RAdam) shares.

State layout is torch's (``step`` a 0-dim CPU tensor, ``exp_avg``, ``exp_avg_sq``,
``max_exp_avg_sq``), so a ``torch.optim.Adam`` state_dict loads here and continues unchanged.

Both update paths fold the bias correction of the second moment into the scalars instead of
dividing the whole ``sqrt(v)`` buffer by it::

    lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)  ==  (lr * sqrt(bc2) / bc1) * m / (sqrt(v) + eps * sqrt(bc2))

which saves one pass over every parameter per step.
"""

from __future__ import annotations

import torch

from optim import _fused, quantization
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
from optim._validate import check_betas, check_ge, check_lr, reject_unsupported


def check_adam_args(lr, betas, eps: float, weight_decay: float) -> None:
    """The hyperparameter checks every Adam-family constructor makes, named like the arguments."""
    check_lr(lr)
    check_ge("eps", eps)
    check_betas(betas)
    check_ge("weight_decay", weight_decay)


def decayed_grad(param, grad, *, lr, weight_decay, decoupled_weight_decay, maximize):
    """Weight decay the Adam way: shrink ``param`` (decoupled) or add the L2 term to the gradient."""
    if weight_decay != 0 and decoupled_weight_decay:
        param.mul_(1 - lr * weight_decay)
        weight_decay = 0
    return signed_grad(param, grad, maximize=maximize, weight_decay=weight_decay)


def foreach_decayed_grads(params, grads, *, lr, weight_decay, decoupled_weight_decay, maximize):
    """:func:`decayed_grad` for a (device, dtype) group."""
    if weight_decay != 0 and decoupled_weight_decay:
        torch._foreach_mul_(params, 1 - lr * weight_decay)
        weight_decay = 0
    return foreach_signed_grads(params, grads, maximize=maximize, weight_decay=weight_decay)[0]


# --- Adam -----------------------------------------------------------------------------------


@quantization.with_state_bits_doc
@with_arg_docs
class Adam(quantization.QuantizedState, Optimizer):
    r"""Adam, with optional AMSGrad and decoupled (AdamW) weight decay.

    Update rule, for gradient :math:`g_t` (negated when ``maximize``) of parameters :math:`\theta`:

    .. math::
        g_t &\leftarrow g_t + \lambda\theta_{t-1}
            \quad\text{(or } \theta_{t-1} \leftarrow (1 - \gamma\lambda)\theta_{t-1}
            \text{ when decoupled)} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \text{ if amsgrad else } v_t \\
        \theta_t &= \theta_{t-1} - \gamma \frac{m_t / (1 - \beta_1^t)}
            {\sqrt{\hat v_t / (1 - \beta_2^t)} + \epsilon}

    Args:
        {params}
        lr (float or Tensor, optional): learning rate :math:`\gamma` (default: 1e-3).
        betas (Tuple[float, float], optional): :math:`(\beta_1, \beta_2)`, decay rates of the first and
            second moment averages, each in [0, 1) (default: (0.9, 0.999)).
        eps (float, optional): :math:`\epsilon`, added to the denominator for numerical stability
            (default: 1e-8).
        weight_decay (float, optional): :math:`\lambda` (default: 0).
        amsgrad (bool, optional): use the running maximum of :math:`v_t` (AMSGrad) (default: False).
        {foreach}
        {maximize}
        {capturable}
        {differentiable}
        fused (bool, optional): one compiled kernel per group per step (``optim._fused``; CUDA tensors: Triton);
            parameters with 8-bit state keep their own path (default: None, the foreach/loop choice).
        decoupled_weight_decay (bool, optional): decay the weights directly, as AdamW, instead of
            adding :math:`\lambda\theta` to the gradient (default: False).

    A parameter group may set ``state_bits`` (32 or 8; the constructor keeps torch's signature):
    {state_bits}
    :class:`Adam8bit` and :class:`AdamW8bit` set it for every group.

    Example:
        >>> opt = Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999))
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()
        >>> opt.zero_grad()

    Reference: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015
    (https://arxiv.org/abs/1412.6980); AMSGrad: Reddi, Kale & Kumar, "On the Convergence of Adam
    and Beyond", ICLR 2018 (https://openreview.net/forum?id=ryQu7f-RZ).
    """

    def __init__(
        self,
        params,
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_adam_args(lr, betas, eps, weight_decay)
        reject_unsupported(capturable=capturable, differentiable=differentiable)
        _fused.check_flags(fused=fused, foreach=foreach)
        defaults = dict(
            lr=lr, betas=float_betas(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable,
            fused=fused, decoupled_weight_decay=decoupled_weight_decay,
            **quantization.state_bits_default(self._state_bits),
        )
        super().__init__(params, defaults)

    _group_defaults = dict(
        amsgrad=False, maximize=False, foreach=None, capturable=False, differentiable=False, fused=None,
        decoupled_weight_decay=False,
    )
    _counters = ("step",)
    def _eightbit_step(self, params, grads, states, **hyperparameters) -> None:
        _eightbit_adam(params, grads, states, **hyperparameters)

    def _init_group(self, group):
        """The lists of the parameters whose state is 32-bit; creates every missing state."""
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = [], [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = dense_grad(p, "Adam")
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                if quantization.wants_quantized_state(p, group):
                    for name, signed in _moments(group["amsgrad"]):
                        quantization.init_moment(state, name, p, signed=signed)
                else:
                    state["exp_avg"] = zeros_like(p)
                    state["exp_avg_sq"] = zeros_like(p)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = zeros_like(p)
            if quantization.is_quantized(state, "exp_avg"):
                continue
            params.append(p)
            grads.append(grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            if group["amsgrad"]:
                max_exp_avg_sqs.append(state["max_exp_avg_sq"])
            steps.append(state["step"])
        return params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps

    def _hyperparameters(self, group):
        beta1, beta2 = group["betas"]
        return dict(
            amsgrad=group["amsgrad"], beta1=beta1, beta2=beta2, lr=float(to_scalar(group["lr"])),
            weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
        )

    def _update_functions(self):
        return _single_tensor_adam, _multi_tensor_adam, _fused_adam


@with_arg_docs
class AdamW(Adam):
    r"""AdamW: Adam whose weight decay shrinks the weights directly instead of entering the moments.

    Update rule, for gradient :math:`g_t` (negated when ``maximize``) of parameters :math:`\theta`:

    .. math::
        \theta_{t-1} &\leftarrow (1 - \gamma\lambda)\,\theta_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \text{ if amsgrad else } v_t \\
        \theta_t &= \theta_{t-1} - \gamma \frac{m_t / (1 - \beta_1^t)}
            {\sqrt{\hat v_t / (1 - \beta_2^t)} + \epsilon}

    Args:
        {params}
        lr (float or Tensor, optional): learning rate :math:`\gamma` (default: 1e-3).
        betas (Tuple[float, float], optional): :math:`(\beta_1, \beta_2)`, each in [0, 1)
            (default: (0.9, 0.999)).
        eps (float, optional): :math:`\epsilon` (default: 1e-8).
        weight_decay (float, optional): decoupled decay coefficient :math:`\lambda` (default: 1e-2).
        amsgrad (bool, optional): use the running maximum of :math:`v_t` (AMSGrad) (default: False).
        {maximize}
        {foreach}
        {capturable}
        {differentiable}
        fused (bool, optional): one compiled kernel per group per step (``optim._fused``; CUDA tensors: Triton);
            parameters with 8-bit state keep their own path (default: None, the foreach/loop choice).

    A parameter group may set ``state_bits``, as for :class:`Adam`.

    Example:
        >>> opt = AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()

    Reference: Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019
    (https://arxiv.org/abs/1711.05101).
    """

    def __init__(
        self,
        params,
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad,
            foreach=foreach, maximize=maximize, capturable=capturable, differentiable=differentiable,
            fused=fused, decoupled_weight_decay=True,
        )

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


class Adam8bit(Adam):
    """:class:`Adam` whose moments are 8-bit (``state_bits=8`` in every parameter group): block-wise
    quantized uint8 codes with one float32 absmax per block of 2048, about 2 bytes of state per
    parameter instead of 8; tensors under 4096 elements keep 32-bit moments.  Arguments as
    :class:`Adam`'s.

    Example:
        >>> opt = Adam8bit(model.parameters(), lr=1e-3)

    Reference: Dettmers, Lewis, Shleifer & Zettlemoyer, "8-bit Optimizers via Block-wise
    Quantization", ICLR 2022 (https://arxiv.org/abs/2110.02861).
    """

    _state_bits = 8


class AdamW8bit(AdamW):
    """:class:`AdamW` with 8-bit moments, as :class:`Adam8bit`.  Arguments as :class:`AdamW`'s.

    Example:
        >>> opt = AdamW8bit(model.parameters(), lr=1e-3, weight_decay=1e-2)

    Reference: Dettmers et al., ICLR 2022 (https://arxiv.org/abs/2110.02861).
    """

    _state_bits = 8


def _single_tensor_adam(
    params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps,
    *, amsgrad, beta1, beta2, lr, weight_decay, eps, maximize, decoupled_weight_decay,
) -> None:
    """One parameter at a time; allocates at most two parameter-sized temporaries."""
    for i, param in enumerate(params):
        step_t = state_steps[i]
        step_t += 1
        step = step_t.item()
        grad = decayed_grad(
            param, grads[i], lr=lr, weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )
        param, grad, exp_avg, exp_avg_sq = real_views([param, grad, exp_avgs[i], exp_avg_sqs[i]])
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        second_moment = exp_avg_sq
        if amsgrad:
            (max_sq,) = real_views([max_exp_avg_sqs[i]])
            torch.maximum(max_sq, exp_avg_sq, out=max_sq)
            second_moment = max_sq

        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        denom = second_moment.sqrt().add_(eps * bias_correction2_sqrt)
        param.addcdiv_(exp_avg, denom, value=-lr * bias_correction2_sqrt / bias_correction1)


def _moments(amsgrad: bool) -> tuple[tuple[str, bool], ...]:
    """Adam's moments and whether each is signed (the first) or never negative (the second)."""
    moments = (("exp_avg", True), ("exp_avg_sq", False))
    return (*moments, ("max_exp_avg_sq", False)) if amsgrad else moments


def _eightbit_adam(params, grads, states, *, amsgrad, **hyperparameters) -> None:
    """Adam on 8-bit moments (``optim.quantization``), one parameter at a time: dequantize them,
    take :func:`_single_tensor_adam`'s step in float32 (float64 for a float64 parameter),
    quantize them again."""
    for param, grad, state in zip(params, grads, states):
        work = torch.promote_types(param.dtype, torch.float32)
        moments = [
            quantization.load_moment(state, name, signed=signed).to(work) for name, signed in _moments(amsgrad)
        ]
        _single_tensor_adam(
            [param], [grad.to(work)], [moments[0]], [moments[1]], moments[2:], [state["step"]],
            amsgrad=amsgrad, **hyperparameters,
        )
        for (name, signed), value in zip(_moments(amsgrad), moments):
            quantization.store_moment(state, name, value, signed=signed)


def _multi_tensor_adam(
    params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps,
    *, amsgrad, beta1, beta2, lr, weight_decay, eps, maximize, decoupled_weight_decay,
) -> None:
    """All parameters of one (device, dtype) at once with ``torch._foreach_*``.

    Per (device, dtype) group: 6 elementwise passes (torch's foreach Adam makes 7), one more each for
    AMSGrad, maximize and weight decay; one temporary for ``sqrt(v)``, plus one for the gradient
    when it has to be negated or decayed."""
    if not params:
        return
    moments = (exp_avgs, exp_avg_sqs, max_exp_avg_sqs) if amsgrad else (exp_avgs, exp_avg_sqs)
    for lists in group_tensors(params, grads, state_steps, *moments).values():
        device_params, device_grads, device_steps, *device_moments = lists
        device_params, device_grads, *device_moments = (
            real_views(t) for t in (device_params, device_grads, *device_moments)
        )
        device_exp_avgs, device_exp_avg_sqs = device_moments[:2]
        increment_steps(device_steps)
        device_grads = foreach_decayed_grads(
            device_params, device_grads, lr=lr, weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
        )

        torch._foreach_lerp_(device_exp_avgs, device_grads, 1 - beta1)
        torch._foreach_mul_(device_exp_avg_sqs, beta2)
        torch._foreach_addcmul_(device_exp_avg_sqs, device_grads, device_grads, 1 - beta2)
        del device_grads  # free the gradient copy before allocating sqrt(v)

        second_moments = device_exp_avg_sqs
        if amsgrad:
            second_moments = device_moments[2]
            torch._foreach_maximum_(second_moments, device_exp_avg_sqs)

        steps = [s.item() for s in device_steps]
        bias_correction2_sqrts = [(1 - beta2**s) ** 0.5 for s in steps]
        step_sizes = [-lr * b2 / (1 - beta1**s) for s, b2 in zip(steps, bias_correction2_sqrts)]
        denom = torch._foreach_sqrt(second_moments)
        torch._foreach_add_(denom, [eps * b2 for b2 in bias_correction2_sqrts])
        torch._foreach_addcdiv_(device_params, device_exp_avgs, denom, step_sizes)


def _fused_adam(
    params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps,
    *, amsgrad, beta1, beta2, lr, weight_decay, eps, maximize, decoupled_weight_decay,
) -> None:
    """:func:`_multi_tensor_adam`'s update, one kernel call per group (``optim._fused``): each
    element of the parameter, gradient and moments is read once and written once, with the same
    bias-corrected step size ``lr * sqrt(bc2) / bc1`` and ``eps * sqrt(bc2)`` per tensor.  Falls
    back to :func:`_multi_tensor_adam` (warning once) where the kernel does not apply."""
    lists = (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs)
    if any(p.is_complex() for p in params):
        lists = tuple(real_views(t) for t in lists)
    steps = [s.item() + 1 for s in state_steps]  # the counters are incremented once the kernel has run
    bias_correction2_sqrts = [(1 - beta2**s) ** 0.5 for s in steps]
    step_sizes = [-lr * b2 / (1 - beta1**s) for s, b2 in zip(steps, bias_correction2_sqrts)]
    eps_hats = [eps * b2 for b2 in bias_correction2_sqrts]
    hyperparameters = (beta1, beta2, lr, weight_decay, decoupled_weight_decay, maximize)
    if _fused.run("adam_", *lists, step_sizes, eps_hats, *hyperparameters):
        increment_steps(state_steps)
        return
    _multi_tensor_adam(
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, amsgrad=amsgrad, beta1=beta1,
        beta2=beta2, lr=lr, weight_decay=weight_decay, eps=eps, maximize=maximize,
        decoupled_weight_decay=decoupled_weight_decay,
    )
