"""The ``fused=True`` steps on CUDA: Triton kernels for Adam/AdamW, SGD, Adagrad, Lion, RMSprop and LAMB.

Each function here takes the arguments of the C++ operator of the same name in
``_fused_cpu.cpp`` (``optim._fused.run`` passes them on unchanged) and does its arithmetic,
operation by operation in float32, so a CUDA step agrees with the foreach path to float32
rounding: one kernel launch per tensor, each element of the parameter, gradient and state read
once and written once (LAMB, whose trust ratio needs a tensor's norms before any of it moves,
takes three launches: the moments, the norms' sum, the step).  Three choices keep the agreement: divisions and square roots are the
correctly rounded ``div_rn``/``sqrt_rn`` (Triton's ``/`` and ``sqrt`` are approximate on
NVIDIA GPUs), launches pass ``enable_fp_fusion=False`` (no fused multiply-add, as
``-ffp-contract=off`` for the C++ kernels), and lerp takes the same one of torch's two forms.

Hyperparameters are runtime arguments, not ``tl.constexpr``: a learning-rate schedule changes a
scalar every step and must not compile a kernel every step.  Only the choices that change the
loop (AMSGrad, the lerp form, momentum, Nesterov, a first momentum step) are compile-time, at
most a few variants per optimizer.  The bias corrections are the caller's per-tensor scalars,
computed from the CPU step counters, so a step never waits on the GPU.

Triton kernels need Triton (torch's CUDA wheels install it); CPU tensors run through them only
in Triton's interpreter (``TRITON_INTERPRET=1`` set before Triton is imported), which is how the
tests check the kernels on machines without a GPU (``optim._fused.TRITON_ON_CPU``).
Only float32 is taken: Triton passes Python floats to a kernel as float32, which would round a
float64 step's scalars.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

BLOCK = 1024  # elements per program instance
REDUCE_BLOCK = 1024  # LAMB's per-block norm sums added per trip of its one-program reduction


@triton.jit
def _adam_kernel(
    p_ptr, g_ptr, m_ptr, v_ptr, vmax_ptr, n,
    sign, shrink, wd, w1, b2, w2, step_size, eps_hat,
    AMSGRAD: tl.constexpr, SMALL_W1: tl.constexpr, BLOCK: tl.constexpr,
):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    p = tl.load(p_ptr + offsets, mask=mask) * shrink  # decoupled decay (shrink 1 otherwise)
    g = tl.load(g_ptr + offsets, mask=mask) * sign + wd * p  # maximize, then the L2 term (wd 0 otherwise)
    m = tl.load(m_ptr + offsets, mask=mask)
    if SMALL_W1:  # torch's lerp: self + w * (end - self) for |w| < 0.5, else end - (end - self) * (1 - w)
        m = m + w1 * (g - m)
    else:
        m = g - (g - m) * (1.0 - w1)
    v = tl.load(v_ptr + offsets, mask=mask) * b2 + w2 * g * g
    tl.store(m_ptr + offsets, m, mask=mask)
    tl.store(v_ptr + offsets, v, mask=mask)
    second = v
    if AMSGRAD:
        vmax = tl.load(vmax_ptr + offsets, mask=mask)
        second = tl.where(vmax > v, vmax, v)
        tl.store(vmax_ptr + offsets, second, mask=mask)
    p = p + tl.div_rn(step_size * m, tl.sqrt_rn(second) + eps_hat)
    tl.store(p_ptr + offsets, p, mask=mask)


@triton.jit
def _sgd_kernel(
    p_ptr, g_ptr, buf_ptr, n,
    sign, wd, mu, w, neg_lr,
    MOMENTUM: tl.constexpr, FIRST: tl.constexpr, NESTEROV: tl.constexpr, BLOCK: tl.constexpr,
):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    p = tl.load(p_ptr + offsets, mask=mask)
    g = tl.load(g_ptr + offsets, mask=mask) * sign + wd * p
    if MOMENTUM:
        if FIRST:  # the buffer starts as the first step's gradient, as the foreach path's clone
            b = g
        else:
            b = tl.load(buf_ptr + offsets, mask=mask) * mu + w * g
        tl.store(buf_ptr + offsets, b, mask=mask)
        if NESTEROV:
            g = g + mu * b
        else:
            g = b
    tl.store(p_ptr + offsets, p + neg_lr * g, mask=mask)


@triton.jit
def _adagrad_kernel(p_ptr, g_ptr, sum_ptr, n, sign, wd, minus_clr, eps, BLOCK: tl.constexpr):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    p = tl.load(p_ptr + offsets, mask=mask)
    g = tl.load(g_ptr + offsets, mask=mask) * sign + wd * p
    s = tl.load(sum_ptr + offsets, mask=mask) + g * g
    tl.store(sum_ptr + offsets, s, mask=mask)
    tl.store(p_ptr + offsets, p + tl.div_rn(g * minus_clr, tl.sqrt_rn(s) + eps), mask=mask)


@triton.jit
def _lion_kernel(p_ptr, g_ptr, m_ptr, n, sign, shrink, b1, w1, b2, w2, neg_lr, BLOCK: tl.constexpr):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    g = tl.load(g_ptr + offsets, mask=mask) * sign
    m = tl.load(m_ptr + offsets, mask=mask)
    c = m * b1 + w1 * g
    direction = (c > 0).to(tl.float32) - (c < 0).to(tl.float32)  # torch.sign
    p = tl.load(p_ptr + offsets, mask=mask) * shrink + neg_lr * direction
    tl.store(p_ptr + offsets, p, mask=mask)
    tl.store(m_ptr + offsets, m * b2 + w2 * g, mask=mask)


@triton.jit
def _rmsprop_kernel(
    p_ptr, g_ptr, sq_ptr, ga_ptr, buf_ptr, n,
    sign, wd, alpha, w, eps, mu, neg_lr,
    CENTERED: tl.constexpr, MOMENTUM: tl.constexpr, SMALL_W: tl.constexpr, BLOCK: tl.constexpr,
):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    p = tl.load(p_ptr + offsets, mask=mask)
    g = tl.load(g_ptr + offsets, mask=mask) * sign + wd * p
    s = tl.load(sq_ptr + offsets, mask=mask) * alpha + w * g * g
    tl.store(sq_ptr + offsets, s, mask=mask)
    if CENTERED:
        ga = tl.load(ga_ptr + offsets, mask=mask)
        if SMALL_W:  # torch's lerp forms, as for Adam's first moment
            ga = ga + w * (g - ga)
        else:
            ga = g - (g - ga) * (1.0 - w)
        tl.store(ga_ptr + offsets, ga, mask=mask)
        avg = tl.sqrt_rn(s + -ga * ga) + eps
    else:
        avg = tl.sqrt_rn(s) + eps
    if MOMENTUM:
        b = tl.load(buf_ptr + offsets, mask=mask) * mu + tl.div_rn(g, avg)
        tl.store(buf_ptr + offsets, b, mask=mask)
        p = p + neg_lr * b
    else:
        p = p + tl.div_rn(neg_lr * g, avg)
    tl.store(p_ptr + offsets, p, mask=mask)


@triton.jit
def _lamb_moments_kernel(
    p_ptr, g_ptr, m_ptr, v_ptr, r_ptr, sums_ptr, n,
    sign, b1, w1, b2, w2, bc1, bc2, eps, wd, BLOCK: tl.constexpr,
):
    """The moments and the direction r (stored for the step), and this block's sums of p**2 and
    r**2 in float64 at ``sums_ptr[2 * block]`` and ``[2 * block + 1]``."""
    block = tl.program_id(0).to(tl.int64)
    offsets = block * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    p = tl.load(p_ptr + offsets, mask=mask, other=0.0)
    g = tl.load(g_ptr + offsets, mask=mask) * sign
    m = tl.load(m_ptr + offsets, mask=mask) * b1 + w1 * g
    v = tl.load(v_ptr + offsets, mask=mask) * b2 + w2 * g * g
    tl.store(m_ptr + offsets, m, mask=mask)
    tl.store(v_ptr + offsets, v, mask=mask)
    r = tl.div_rn(tl.div_rn(m, bc1), tl.sqrt_rn(tl.div_rn(v, bc2)) + eps) + wd * p
    r = tl.where(mask, r, 0.0)
    tl.store(r_ptr + offsets, r, mask=mask)
    p64 = p.to(tl.float64)
    r64 = r.to(tl.float64)
    tl.store(sums_ptr + 2 * block, tl.sum(p64 * p64, axis=0))
    tl.store(sums_ptr + 2 * block + 1, tl.sum(r64 * r64, axis=0))


@triton.jit
def _lamb_ratio_kernel(sums_ptr, ratio_ptr, blocks, BLOCK: tl.constexpr):
    """One program: the blocks' sums added, the trust ratio ||p|| / ||r|| (1 when either is 0),
    stored in float32 on the device, so no step waits for the host."""
    weight_sq = tl.zeros((BLOCK,), dtype=tl.float64)
    update_sq = tl.zeros((BLOCK,), dtype=tl.float64)
    for start in range(0, blocks, BLOCK):
        index = start + tl.arange(0, BLOCK)
        mask = index < blocks
        weight_sq += tl.load(sums_ptr + 2 * index, mask=mask, other=0.0)
        update_sq += tl.load(sums_ptr + 2 * index + 1, mask=mask, other=0.0)
    # float64 square roots are correctly rounded (sqrt_rn is float32's)
    weight_norm = tl.sqrt(tl.sum(weight_sq, axis=0)).to(tl.float32)
    update_norm = tl.sqrt(tl.sum(update_sq, axis=0)).to(tl.float32)
    both = (weight_norm > 0) & (update_norm > 0)
    ratio = tl.where(both, tl.div_rn(weight_norm, tl.where(both, update_norm, 1.0)), 1.0)
    tl.store(ratio_ptr, ratio)


@triton.jit
def _lamb_step_kernel(p_ptr, r_ptr, ratio_ptr, n, lr, BLOCK: tl.constexpr):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    ratio = tl.load(ratio_ptr)
    p = tl.load(p_ptr + offsets, mask=mask)
    tl.store(p_ptr + offsets, p - lr * (tl.load(r_ptr + offsets, mask=mask) * ratio), mask=mask)


def interpreting() -> bool:
    """Whether Triton runs kernels in its interpreter (on CPU tensors) in this process."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def refusal(params, *others) -> str | None:
    """Why the kernels cannot take these tensors (a warning's text), or None.  Every tensor is
    checked before any is written, so a refused group steps wholly through foreach."""
    for tensors in others:
        if tensors and len(tensors) != len(params):
            return "lists of unequal lengths"
    device = params[0].device
    if device.type != "cuda" and not (device.type == "cpu" and interpreting()):
        return f"no Triton kernel for {device.type} tensors"
    for k, p in enumerate(params):
        for t in (p, *(tensors[k] for tensors in others if tensors)):
            if t.layout != torch.strided:
                return "no Triton kernel for sparse tensors"
            if t.device != device:
                return "tensors of one group on several devices"
            if t.dtype != torch.float32:
                return f"no Triton kernel for {t.dtype} tensors (float32 only)"
            if not t.is_contiguous():
                return "no Triton kernel for non-contiguous tensors"
            if t.numel() != p.numel():
                return "state or gradient of another size than its parameter"
    return None


def _launch(kernel, first: torch.Tensor, *args, grid=None, block=None, **keywords) -> None:
    n = first.numel()
    if n == 0:
        return
    grid = grid or (triton.cdiv(n, BLOCK),)
    block = block or BLOCK
    if first.is_cuda and first.device.index != torch.cuda.current_device():
        with torch.cuda.device(first.device):  # Triton launches on the current device
            kernel[grid](*args, BLOCK=block, enable_fp_fusion=False, **keywords)
        return
    kernel[grid](*args, BLOCK=block, enable_fp_fusion=False, **keywords)


def adam_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, step_sizes, eps_hats,
          beta1, beta2, lr, weight_decay, decoupled, maximize) -> str | None:
    """``adam_`` of ``_fused_cpu.cpp``; returns why it refused the tensors, None once it ran."""
    why = refusal(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs)
    if why:
        return why
    amsgrad = bool(max_exp_avg_sqs)
    w1 = 1 - beta1
    scalars = dict(
        sign=-1.0 if maximize else 1.0,
        shrink=1 - lr * weight_decay if weight_decay != 0 and decoupled else 1.0,
        wd=float(weight_decay) if weight_decay != 0 and not decoupled else 0.0,
        w1=w1, b2=beta2, w2=1 - beta2,
    )
    small_w1 = abs(float(torch.tensor(w1, dtype=torch.float32))) < 0.5  # the C++ test, on the float32 weight
    for k, p in enumerate(params):
        vmax = max_exp_avg_sqs[k] if amsgrad else exp_avg_sqs[k]  # an unused pointer without AMSGrad
        _launch(
            _adam_kernel, p, p, grads[k], exp_avgs[k], exp_avg_sqs[k], vmax, p.numel(),
            step_size=step_sizes[k], eps_hat=eps_hats[k], AMSGRAD=amsgrad, SMALL_W1=small_w1, **scalars,
        )
    return None


def sgd_(params, grads, momentum_buffers, first, lr, weight_decay, momentum, dampening, nesterov,
         maximize) -> str | None:
    """``sgd_`` of ``_fused_cpu.cpp``: ``first[k]`` marks a buffer the step fills with the gradient."""
    why = refusal(params, grads, momentum_buffers)
    if why:
        return why
    with_momentum = bool(momentum_buffers)
    scalars = dict(sign=-1.0 if maximize else 1.0, wd=float(weight_decay), mu=float(momentum), w=1 - dampening)
    for k, p in enumerate(params):
        buf = momentum_buffers[k] if with_momentum else p
        _launch(
            _sgd_kernel, p, p, grads[k], buf, p.numel(), neg_lr=-lr, MOMENTUM=with_momentum,
            FIRST=with_momentum and bool(first[k]), NESTEROV=bool(nesterov), **scalars,
        )
    return None


def adagrad_(params, grads, sums, minus_clrs, weight_decay, eps, maximize) -> str | None:
    """``adagrad_`` of ``_fused_cpu.cpp``: ``minus_clrs[k]`` is ``-lr / (1 + (t - 1) * lr_decay)``."""
    why = refusal(params, grads, sums)
    if why:
        return why
    for k, p in enumerate(params):
        _launch(
            _adagrad_kernel, p, p, grads[k], sums[k], p.numel(), sign=-1.0 if maximize else 1.0,
            wd=float(weight_decay), minus_clr=minus_clrs[k], eps=float(eps),
        )
    return None


def lion_(params, grads, exp_avgs, lr, beta1, beta2, weight_decay, maximize) -> str | None:
    """``lion_`` of ``_fused_cpu.cpp``."""
    why = refusal(params, grads, exp_avgs)
    if why:
        return why
    scalars = dict(
        sign=-1.0 if maximize else 1.0, shrink=1 - lr * weight_decay if weight_decay != 0 else 1.0,
        b1=float(beta1), w1=1 - beta1, b2=float(beta2), w2=1 - beta2, neg_lr=-lr,
    )
    for k, p in enumerate(params):
        _launch(_lion_kernel, p, p, grads[k], exp_avgs[k], p.numel(), **scalars)
    return None


def rmsprop_(params, grads, square_avgs, grad_avgs, momentum_buffers, lr, alpha, eps, weight_decay, momentum,
             maximize) -> str | None:
    """``rmsprop_`` of ``_fused_cpu.cpp``: ``grad_avgs`` empty unless centered, ``momentum_buffers``
    empty without momentum."""
    why = refusal(params, grads, square_avgs, grad_avgs, momentum_buffers)
    if why:
        return why
    centered, with_momentum = bool(grad_avgs), bool(momentum_buffers)
    w = 1 - alpha
    scalars = dict(
        sign=-1.0 if maximize else 1.0, wd=float(weight_decay), alpha=float(alpha), w=w, eps=float(eps),
        mu=float(momentum), neg_lr=-lr,
    )
    small_w = abs(float(torch.tensor(w, dtype=torch.float32))) < 0.5  # the C++ test, on the float32 weight
    for k, p in enumerate(params):
        ga = grad_avgs[k] if centered else p  # unused pointers where the option is off
        buf = momentum_buffers[k] if with_momentum else p
        _launch(
            _rmsprop_kernel, p, p, grads[k], square_avgs[k], ga, buf, p.numel(), CENTERED=centered,
            MOMENTUM=with_momentum, SMALL_W=small_w, **scalars,
        )
    return None


def lamb_(params, grads, exp_avgs, exp_avg_sqs, bias_corrections1, bias_corrections2, lr, beta1, beta2, eps,
          weight_decay, maximize) -> str | None:
    """``lamb_`` of ``_fused_cpu.cpp``: per tensor, the moments and direction with the blocks'
    float64 norm sums, one program adding them into the trust ratio, and the step."""
    why = refusal(params, grads, exp_avgs, exp_avg_sqs)
    if why:
        return why
    largest = max(p.numel() for p in params)
    device = params[0].device
    scratch = torch.empty(largest, dtype=torch.float32, device=device)  # the directions, one tensor at a time
    sums = torch.empty(2 * triton.cdiv(largest, BLOCK), dtype=torch.float64, device=device)
    ratios = torch.empty(len(params), dtype=torch.float32, device=device)
    scalars = dict(
        sign=-1.0 if maximize else 1.0, b1=float(beta1), w1=1 - beta1, b2=float(beta2), w2=1 - beta2,
        eps=float(eps), wd=float(weight_decay),
    )
    for k, p in enumerate(params):
        n = p.numel()
        blocks = triton.cdiv(n, BLOCK)
        _launch(
            _lamb_moments_kernel, p, p, grads[k], exp_avgs[k], exp_avg_sqs[k], scratch, sums, n,
            bc1=bias_corrections1[k], bc2=bias_corrections2[k], **scalars,
        )
        _launch(_lamb_ratio_kernel, p, sums, ratios[k:], blocks, grid=(1,), block=REDUCE_BLOCK)
        _launch(_lamb_step_kernel, p, p, scratch, ratios[k:], n, lr=float(lr))
    return None


KERNELS = {
    "adam_": adam_, "sgd_": sgd_, "adagrad_": adagrad_, "lion_": lion_, "rmsprop_": rmsprop_, "lamb_": lamb_,
}
