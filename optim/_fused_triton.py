"""The ``fused=True`` steps on CUDA: Triton kernels for Adam/AdamW, SGD, Adagrad, Lion, RMSprop and LAMB.

Each function here takes the arguments of the C++ operator of the same name in
``_fused_cpu.cpp`` (``optim._fused.run`` passes them on unchanged) and does its arithmetic,
operation by operation in float32, so a CUDA step agrees with the foreach path to float32
rounding, each element of the parameter, gradient and state read once and written once.

One launch per parameter group, as torch's multi-tensor fused kernels: the group's tensors are
described by a table (for each tensor its size, its first program and the addresses of its
parameter, gradient and state; then the tensor each program works on), built on the host each
step and copied to the device with the launch, so a model of many small tensors pays one launch
instead of one per tensor.  Each program steps ``CHUNK`` elements of one tensor, ``BLOCK`` at a
time: whole blocks without a mask and, where every address of the launch is a multiple of 16
bytes (``ALIGNED``), with that alignment told to the compiler, so each thread moves four floats
per load and store; the partial last block of a tensor is masked.  LAMB, whose trust ratio needs a tensor's norms before any of it moves, takes three
launches: the moments with each program's float64 norm sums, one program per tensor adding them
into its trust ratio on the device, and the step, which recomputes the direction from the stored
moments (the same bits; a GPU has the arithmetic to spare, and a stored direction would need
scratch memory the size of the whole group).

Three choices keep the agreement: divisions and square roots are the correctly rounded
``div_rn``/``sqrt_rn`` (Triton's ``/`` and ``sqrt`` are approximate on NVIDIA GPUs), launches
pass ``enable_fp_fusion=False`` (no fused multiply-add, as ``-ffp-contract=off`` for the C++
kernels), and lerp takes the same one of torch's two forms.

Hyperparameters are runtime arguments, not ``tl.constexpr``: a learning-rate schedule changes a
scalar every step and must not compile a kernel every step.  Only the choices that change the
loop (AMSGrad, the lerp form, momentum, Nesterov, centering) are compile-time, at most a few
variants per optimizer.  Per-tensor scalars (bias corrections, Adagrad's decayed rate, whether a
momentum buffer starts this step) travel in a float32 table beside the addresses; they come
from the CPU step counters, so a step never waits on the GPU.

Triton kernels need Triton (torch's CUDA wheels install it); CPU tensors run through them only
in Triton's interpreter (``TRITON_INTERPRET=1`` set before Triton is imported), which is how the
tests check the kernels on machines without a GPU (``optim._fused.TRITON_ON_CPU``).
Only float32 is taken: Triton passes Python floats to a kernel as float32, which would round a
float64 step's scalars.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import triton
import triton.language as tl

# Measured on an H200 (docs/benchmarks.md), Adam and SGD with momentum on 100 M parameters in 100
# tensors: 2048/8192 on 8 warps was among the fastest of 18 settings (BLOCK 1024-4096, CHUNK 4-64
# blocks, 4 or 8 warps), 0.78 ms against 1.22 ms for the 1024/16384 on 4 warps used before
BLOCK = 2048  # elements a program steps at once
CHUNK = 4 * BLOCK  # elements of one tensor per program
NUM_WARPS = 8
REDUCE_BLOCK = 1024  # LAMB's per-program norm sums a tensor's reduction adds per trip
HEADER = 2  # a tensor's row in the table: its size, its first program, then its tensors' addresses


@triton.jit
def _locate(table_ptr, n_tensors, WIDTH: tl.constexpr, CHUNK: tl.constexpr):
    """This program's tensor ``t``, the start of its table row, its size and this chunk's first element."""
    program = tl.program_id(0)
    t = tl.load(table_ptr + n_tensors * WIDTH + program)
    row = t * WIDTH
    n = tl.load(table_ptr + row)
    start = (program - tl.load(table_ptr + row + 1)) * CHUNK
    return t, row, n, start


@triton.jit
def _address(table_ptr, row, slot: tl.constexpr, ALIGNED: tl.constexpr):
    """The float32 pointer in column ``slot`` of the tensor's addresses.  ``ALIGNED``: every address
    of the launch is a multiple of 16 bytes, so the compiler may load four floats at once (an
    address read from memory tells it nothing)."""
    pointer = tl.load(table_ptr + row + 2 + slot).to(tl.pointer_type(tl.float32))
    if ALIGNED:  # on the pointer: the compiler forgets a hint on the integer through the cast
        pointer = tl.multiple_of(pointer, 16)
    return pointer


@triton.jit
def _blocks(n, start, CHUNK: tl.constexpr, BLOCK: tl.constexpr):
    """Of this chunk's elements, the end of its whole blocks (stepped without masks, which would
    keep the compiler from loading several floats at once) and the end of its last, partial one."""
    end = tl.minimum(n - start, CHUNK)
    return end - end % BLOCK, end


@triton.jit
def _whole(start, offset, BLOCK: tl.constexpr):
    """A whole block's offsets and its mask, all true (a constant the compiler folds)."""
    return start + offset + tl.arange(0, BLOCK), tl.full((BLOCK,), 1, tl.int1)


@triton.jit
def _tail(start, full, n, BLOCK: tl.constexpr):
    """The partial last block's offsets and mask."""
    offsets = start + full + tl.arange(0, BLOCK)
    return offsets, offsets < n


@triton.jit
def _adam_block(offsets, mask, p_ptr, g_ptr, m_ptr, v_ptr, vmax_ptr, step_size, eps_hat, sign, shrink, wd, w1, b2, w2,
                AMSGRAD: tl.constexpr, SMALL_W1: tl.constexpr):
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
def _adam_kernel(
    table_ptr, scalars_ptr, n_tensors,
    sign, shrink, wd, w1, b2, w2,
    AMSGRAD: tl.constexpr, SMALL_W1: tl.constexpr, ALIGNED: tl.constexpr, WIDTH: tl.constexpr,
    CHUNK: tl.constexpr, BLOCK: tl.constexpr,
):
    t, row, n, start = _locate(table_ptr, n_tensors, WIDTH, CHUNK)
    p_ptr, g_ptr = _address(table_ptr, row, 0, ALIGNED), _address(table_ptr, row, 1, ALIGNED)
    m_ptr, v_ptr = _address(table_ptr, row, 2, ALIGNED), _address(table_ptr, row, 3, ALIGNED)
    vmax_ptr = p_ptr
    if AMSGRAD:
        vmax_ptr = _address(table_ptr, row, 4, ALIGNED)
    step_size = tl.load(scalars_ptr + 2 * t)
    eps_hat = tl.load(scalars_ptr + 2 * t + 1)
    full, end = _blocks(n, start, CHUNK, BLOCK)
    for offset in range(0, full, BLOCK):
        offsets, mask = _whole(start, offset, BLOCK)
        _adam_block(offsets, mask, p_ptr, g_ptr, m_ptr, v_ptr, vmax_ptr, step_size, eps_hat, sign, shrink, wd, w1,
                    b2, w2, AMSGRAD, SMALL_W1)
    if full < end:
        offsets, mask = _tail(start, full, n, BLOCK)
        _adam_block(offsets, mask, p_ptr, g_ptr, m_ptr, v_ptr, vmax_ptr, step_size, eps_hat, sign, shrink, wd, w1,
                    b2, w2, AMSGRAD, SMALL_W1)


@triton.jit
def _sgd_block(offsets, mask, p_ptr, g_ptr, buf_ptr, fresh, sign, wd, mu, w, neg_lr,
               MOMENTUM: tl.constexpr, NESTEROV: tl.constexpr):
    p = tl.load(p_ptr + offsets, mask=mask)
    g = tl.load(g_ptr + offsets, mask=mask) * sign + wd * p
    if MOMENTUM:
        if fresh:  # the buffer starts as this step's gradient, as the foreach path's clone
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
def _sgd_kernel(
    table_ptr, scalars_ptr, n_tensors,
    sign, wd, mu, w, neg_lr,
    MOMENTUM: tl.constexpr, NESTEROV: tl.constexpr, ALIGNED: tl.constexpr, WIDTH: tl.constexpr,
    CHUNK: tl.constexpr, BLOCK: tl.constexpr,
):
    t, row, n, start = _locate(table_ptr, n_tensors, WIDTH, CHUNK)
    p_ptr, g_ptr = _address(table_ptr, row, 0, ALIGNED), _address(table_ptr, row, 1, ALIGNED)
    buf_ptr = p_ptr
    fresh = False
    if MOMENTUM:
        buf_ptr = _address(table_ptr, row, 2, ALIGNED)
        fresh = tl.load(scalars_ptr + t) != 0
    full, end = _blocks(n, start, CHUNK, BLOCK)
    for offset in range(0, full, BLOCK):
        offsets, mask = _whole(start, offset, BLOCK)
        _sgd_block(offsets, mask, p_ptr, g_ptr, buf_ptr, fresh, sign, wd, mu, w, neg_lr, MOMENTUM, NESTEROV)
    if full < end:
        offsets, mask = _tail(start, full, n, BLOCK)
        _sgd_block(offsets, mask, p_ptr, g_ptr, buf_ptr, fresh, sign, wd, mu, w, neg_lr, MOMENTUM, NESTEROV)


@triton.jit
def _adagrad_block(offsets, mask, p_ptr, g_ptr, sum_ptr, minus_clr, sign, wd, eps):
    p = tl.load(p_ptr + offsets, mask=mask)
    g = tl.load(g_ptr + offsets, mask=mask) * sign + wd * p
    s = tl.load(sum_ptr + offsets, mask=mask) + g * g
    tl.store(sum_ptr + offsets, s, mask=mask)
    tl.store(p_ptr + offsets, p + tl.div_rn(g * minus_clr, tl.sqrt_rn(s) + eps), mask=mask)


@triton.jit
def _adagrad_kernel(
    table_ptr, scalars_ptr, n_tensors, sign, wd, eps,
    ALIGNED: tl.constexpr, WIDTH: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr,
):
    t, row, n, start = _locate(table_ptr, n_tensors, WIDTH, CHUNK)
    p_ptr, g_ptr = _address(table_ptr, row, 0, ALIGNED), _address(table_ptr, row, 1, ALIGNED)
    sum_ptr = _address(table_ptr, row, 2, ALIGNED)
    minus_clr = tl.load(scalars_ptr + t)
    full, end = _blocks(n, start, CHUNK, BLOCK)
    for offset in range(0, full, BLOCK):
        offsets, mask = _whole(start, offset, BLOCK)
        _adagrad_block(offsets, mask, p_ptr, g_ptr, sum_ptr, minus_clr, sign, wd, eps)
    if full < end:
        offsets, mask = _tail(start, full, n, BLOCK)
        _adagrad_block(offsets, mask, p_ptr, g_ptr, sum_ptr, minus_clr, sign, wd, eps)


@triton.jit
def _lion_block(offsets, mask, p_ptr, g_ptr, m_ptr, sign, shrink, b1, w1, b2, w2, neg_lr):
    g = tl.load(g_ptr + offsets, mask=mask) * sign
    m = tl.load(m_ptr + offsets, mask=mask)
    c = m * b1 + w1 * g
    direction = (c > 0).to(tl.float32) - (c < 0).to(tl.float32)  # torch.sign
    p = tl.load(p_ptr + offsets, mask=mask) * shrink + neg_lr * direction
    tl.store(p_ptr + offsets, p, mask=mask)
    tl.store(m_ptr + offsets, m * b2 + w2 * g, mask=mask)


@triton.jit
def _lion_kernel(
    table_ptr, scalars_ptr, n_tensors, sign, shrink, b1, w1, b2, w2, neg_lr,
    ALIGNED: tl.constexpr, WIDTH: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr,
):
    t, row, n, start = _locate(table_ptr, n_tensors, WIDTH, CHUNK)
    p_ptr, g_ptr = _address(table_ptr, row, 0, ALIGNED), _address(table_ptr, row, 1, ALIGNED)
    m_ptr = _address(table_ptr, row, 2, ALIGNED)
    full, end = _blocks(n, start, CHUNK, BLOCK)
    for offset in range(0, full, BLOCK):
        offsets, mask = _whole(start, offset, BLOCK)
        _lion_block(offsets, mask, p_ptr, g_ptr, m_ptr, sign, shrink, b1, w1, b2, w2, neg_lr)
    if full < end:
        offsets, mask = _tail(start, full, n, BLOCK)
        _lion_block(offsets, mask, p_ptr, g_ptr, m_ptr, sign, shrink, b1, w1, b2, w2, neg_lr)


@triton.jit
def _rmsprop_block(offsets, mask, p_ptr, g_ptr, sq_ptr, ga_ptr, buf_ptr, sign, wd, alpha, w, eps, mu, neg_lr,
                   CENTERED: tl.constexpr, MOMENTUM: tl.constexpr, SMALL_W: tl.constexpr):
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
def _rmsprop_kernel(
    table_ptr, scalars_ptr, n_tensors, sign, wd, alpha, w, eps, mu, neg_lr,
    CENTERED: tl.constexpr, MOMENTUM: tl.constexpr, SMALL_W: tl.constexpr,
    ALIGNED: tl.constexpr, WIDTH: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr,
):
    t, row, n, start = _locate(table_ptr, n_tensors, WIDTH, CHUNK)
    p_ptr, g_ptr = _address(table_ptr, row, 0, ALIGNED), _address(table_ptr, row, 1, ALIGNED)
    sq_ptr = _address(table_ptr, row, 2, ALIGNED)
    ga_ptr = p_ptr
    buf_ptr = p_ptr
    if CENTERED:
        ga_ptr = _address(table_ptr, row, 3, ALIGNED)
    if MOMENTUM:
        buf_ptr = _address(table_ptr, row, 4, ALIGNED)
    full, end = _blocks(n, start, CHUNK, BLOCK)
    for offset in range(0, full, BLOCK):
        offsets, mask = _whole(start, offset, BLOCK)
        _rmsprop_block(offsets, mask, p_ptr, g_ptr, sq_ptr, ga_ptr, buf_ptr, sign, wd, alpha, w, eps, mu, neg_lr,
                       CENTERED, MOMENTUM, SMALL_W)
    if full < end:
        offsets, mask = _tail(start, full, n, BLOCK)
        _rmsprop_block(offsets, mask, p_ptr, g_ptr, sq_ptr, ga_ptr, buf_ptr, sign, wd, alpha, w, eps, mu, neg_lr,
                       CENTERED, MOMENTUM, SMALL_W)


@triton.jit
def _lamb_direction(m, v, p, bc1, bc2, eps, wd):
    return tl.div_rn(tl.div_rn(m, bc1), tl.sqrt_rn(tl.div_rn(v, bc2)) + eps) + wd * p


@triton.jit
def _lamb_moments_block(offsets, mask, p_ptr, g_ptr, m_ptr, v_ptr, bc1, bc2, sign, b1, w1, b2, w2, eps, wd,
                        weight_sq, update_sq):
    p = tl.load(p_ptr + offsets, mask=mask, other=0.0)
    g = tl.load(g_ptr + offsets, mask=mask) * sign
    m = tl.load(m_ptr + offsets, mask=mask) * b1 + w1 * g
    v = tl.load(v_ptr + offsets, mask=mask) * b2 + w2 * g * g
    tl.store(m_ptr + offsets, m, mask=mask)
    tl.store(v_ptr + offsets, v, mask=mask)
    r = tl.where(mask, _lamb_direction(m, v, p, bc1, bc2, eps, wd), 0.0).to(tl.float64)
    p64 = p.to(tl.float64)
    return weight_sq + p64 * p64, update_sq + r * r


@triton.jit
def _lamb_moments_kernel(
    table_ptr, scalars_ptr, sums_ptr, n_tensors, sign, b1, w1, b2, w2, eps, wd,
    ALIGNED: tl.constexpr, WIDTH: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr,
):
    """The moments, and this program's sums of p**2 and r**2 (r the direction) in float64 at
    ``sums_ptr[2 * program]`` and ``[2 * program + 1]``."""
    t, row, n, start = _locate(table_ptr, n_tensors, WIDTH, CHUNK)
    p_ptr, g_ptr = _address(table_ptr, row, 0, ALIGNED), _address(table_ptr, row, 1, ALIGNED)
    m_ptr, v_ptr = _address(table_ptr, row, 2, ALIGNED), _address(table_ptr, row, 3, ALIGNED)
    bc1 = tl.load(scalars_ptr + 2 * t)
    bc2 = tl.load(scalars_ptr + 2 * t + 1)
    weight_sq = tl.zeros((BLOCK,), dtype=tl.float64)
    update_sq = tl.zeros((BLOCK,), dtype=tl.float64)
    full, end = _blocks(n, start, CHUNK, BLOCK)
    for offset in range(0, full, BLOCK):
        offsets, mask = _whole(start, offset, BLOCK)
        weight_sq, update_sq = _lamb_moments_block(offsets, mask, p_ptr, g_ptr, m_ptr, v_ptr, bc1, bc2, sign, b1, w1,
                                                   b2, w2, eps, wd, weight_sq, update_sq)
    if full < end:
        offsets, mask = _tail(start, full, n, BLOCK)
        weight_sq, update_sq = _lamb_moments_block(offsets, mask, p_ptr, g_ptr, m_ptr, v_ptr, bc1, bc2, sign, b1, w1,
                                                   b2, w2, eps, wd, weight_sq, update_sq)
    program = tl.program_id(0)
    tl.store(sums_ptr + 2 * program, tl.sum(weight_sq, axis=0))
    tl.store(sums_ptr + 2 * program + 1, tl.sum(update_sq, axis=0))


@triton.jit
def _lamb_ratio_kernel(table_ptr, sums_ptr, ratios_ptr, WIDTH: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr):
    """One program per tensor: its programs' sums added, the trust ratio ||p|| / ||r|| (1 when
    either is 0) stored in float32 on the device, so no step waits for the host."""
    t = tl.program_id(0)
    n = tl.load(table_ptr + t * WIDTH)
    first = tl.load(table_ptr + t * WIDTH + 1)
    count = tl.cdiv(n, CHUNK)
    weight_sq = tl.zeros((BLOCK,), dtype=tl.float64)
    update_sq = tl.zeros((BLOCK,), dtype=tl.float64)
    for offset in range(0, count, BLOCK):
        index = first + offset + tl.arange(0, BLOCK)
        mask = offset + tl.arange(0, BLOCK) < count
        weight_sq += tl.load(sums_ptr + 2 * index, mask=mask, other=0.0)
        update_sq += tl.load(sums_ptr + 2 * index + 1, mask=mask, other=0.0)
    # float64 square roots are correctly rounded (sqrt_rn is float32's)
    weight_norm = tl.sqrt(tl.sum(weight_sq, axis=0)).to(tl.float32)
    update_norm = tl.sqrt(tl.sum(update_sq, axis=0)).to(tl.float32)
    both = (weight_norm > 0) & (update_norm > 0)
    ratio = tl.where(both, tl.div_rn(weight_norm, tl.where(both, update_norm, 1.0)), 1.0)
    tl.store(ratios_ptr + t, ratio)


@triton.jit
def _lamb_step_block(offsets, mask, p_ptr, m_ptr, v_ptr, bc1, bc2, ratio, eps, wd, lr):
    p = tl.load(p_ptr + offsets, mask=mask)
    r = _lamb_direction(tl.load(m_ptr + offsets, mask=mask), tl.load(v_ptr + offsets, mask=mask), p, bc1, bc2, eps, wd)
    tl.store(p_ptr + offsets, p - lr * (r * ratio), mask=mask)


@triton.jit
def _lamb_step_kernel(
    table_ptr, scalars_ptr, ratios_ptr, n_tensors, eps, wd, lr,
    ALIGNED: tl.constexpr, WIDTH: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr,
):
    """The direction again from the stored moments (the same operations, so the same bits) times the ratio."""
    t, row, n, start = _locate(table_ptr, n_tensors, WIDTH, CHUNK)
    p_ptr = _address(table_ptr, row, 0, ALIGNED)
    m_ptr, v_ptr = _address(table_ptr, row, 2, ALIGNED), _address(table_ptr, row, 3, ALIGNED)
    bc1 = tl.load(scalars_ptr + 2 * t)
    bc2 = tl.load(scalars_ptr + 2 * t + 1)
    ratio = tl.load(ratios_ptr + t)
    full, end = _blocks(n, start, CHUNK, BLOCK)
    for offset in range(0, full, BLOCK):
        offsets, mask = _whole(start, offset, BLOCK)
        _lamb_step_block(offsets, mask, p_ptr, m_ptr, v_ptr, bc1, bc2, ratio, eps, wd, lr)
    if full < end:
        offsets, mask = _tail(start, full, n, BLOCK)
        _lamb_step_block(offsets, mask, p_ptr, m_ptr, v_ptr, bc1, bc2, ratio, eps, wd, lr)


def interpreting() -> bool:
    """Whether Triton runs kernels in its interpreter (on CPU tensors) in this process."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def refusal(params, *others) -> str | None:
    """Why the kernels cannot take these tensors (a warning's text), or None.  Every tensor is
    checked before any is written, so a refused group steps wholly through foreach.  One quick
    pass over every tensor; only a refused group goes through :func:`_why`, which names the reason."""
    lists = [params, *(tensors for tensors in others if tensors)]
    if any(len(tensors) != len(params) for tensors in lists):
        return "lists of unequal lengths"
    device = params[0].device
    if device.type != "cuda" and not (device.type == "cpu" and interpreting()):
        return f"no Triton kernel for {device.type} tensors"
    index, strided, float32 = params[0].get_device(), torch.strided, torch.float32
    sizes = [p.numel() for p in params]
    for tensors in lists:
        for t, size in zip(tensors, sizes):
            if not (t.layout is strided and t.dtype is float32 and t.get_device() == index and t.is_contiguous()
                    and t.numel() == size):
                return _why(lists, device)
    return None


def _why(lists, device) -> str:
    for k, p in enumerate(lists[0]):
        for t in (tensors[k] for tensors in lists):
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
    raise AssertionError("refusal() found a tensor _why() did not")


class _Group:
    """The table one launch reads: for each tensor its size, its first program and the addresses of
    ``lists``' tensors (0 for an empty list), then the tensor of each program; and the per-tensor
    float32 ``scalars``, row by row.  Built with numpy (a Python loop per tensor only to read its
    size and addresses) into one buffer that one asynchronous copy takes to the tensors' device;
    ``aligned``: every address a multiple of 16 bytes (a fresh allocation always is; a view at an
    offset need not be), so the kernels may load four floats at once."""

    def __init__(self, lists, scalars=None):
        params = lists[0]
        n = self.n_tensors = len(params)
        self.width = HEADER + len(lists)
        sizes = np.fromiter((p.numel() for p in params), dtype=np.int64, count=n)
        programs = -(-sizes // CHUNK)
        rows = np.zeros((n, self.width), dtype=np.int64)
        rows[:, 0] = sizes
        rows[:, 1] = np.cumsum(programs) - programs
        self.aligned = True
        for column, tensors in enumerate(lists, start=HEADER):
            if tensors:
                addresses = np.fromiter((t.data_ptr() for t in tensors), dtype=np.int64, count=n)
                rows[:, column] = addresses
                self.aligned = self.aligned and not (addresses % 16).any()
        owners = np.repeat(np.arange(n, dtype=np.int64), programs)
        self.programs = len(owners)
        values = np.asarray(scalars if scalars else [0.0], dtype=np.float32).ravel()
        words = rows.size + len(owners)
        words += words % 2  # the scalars start 16-byte aligned, as Triton likes its pointer arguments
        host = np.zeros(words + (len(values) + 1) // 2, dtype=np.int64)
        host[:rows.size] = rows.ravel()
        host[rows.size:rows.size + len(owners)] = owners
        host[words:].view(np.float32)[:len(values)] = values
        buffer = _to(torch.from_numpy(host), params[0].device)
        self.table = buffer[:words]
        self.scalars = buffer[words:].view(torch.float32)

    def launch(self, kernel, *args, grid=None, pass_aligned=True, **keywords) -> None:
        """``kernel`` over ``grid`` (a program per chunk by default), with the table's constants and
        ``ALIGNED=self.aligned`` (``pass_aligned=False`` for a kernel that takes no ``ALIGNED``)."""
        grid = grid or (self.programs,)
        if not grid[0]:
            return  # only empty tensors
        device = self.table.device
        keywords.update(WIDTH=self.width, CHUNK=CHUNK, enable_fp_fusion=False, num_warps=NUM_WARPS)
        if pass_aligned:
            keywords["ALIGNED"] = self.aligned
        keywords.setdefault("BLOCK", BLOCK)
        if device.type == "cuda" and device.index != torch.cuda.current_device():
            with torch.cuda.device(device):  # Triton launches on the current device
                kernel[grid](*args, **keywords)
            return
        kernel[grid](*args, **keywords)


def _to(host: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A table on the device, copied without a wait: from pinned memory, which torch's host
    allocator keeps from reuse until the copy is done."""
    if device.type != "cuda":
        return host
    return host.pin_memory().to(device, non_blocking=True)


def adam_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, step_sizes, eps_hats,
          beta1, beta2, lr, weight_decay, decoupled, maximize) -> str | None:
    """``adam_`` of ``_fused_cpu.cpp``; returns why it refused the tensors, None once it ran."""
    why = refusal(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs)
    if why:
        return why
    w1 = 1 - beta1
    group = _Group((params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs), list(zip(step_sizes, eps_hats)))
    group.launch(
        _adam_kernel, group.table, group.scalars, group.n_tensors,
        sign=-1.0 if maximize else 1.0,
        shrink=1 - lr * weight_decay if weight_decay != 0 and decoupled else 1.0,
        wd=float(weight_decay) if weight_decay != 0 and not decoupled else 0.0,
        w1=w1, b2=beta2, w2=1 - beta2,
        AMSGRAD=bool(max_exp_avg_sqs),
        SMALL_W1=abs(float(torch.tensor(w1, dtype=torch.float32))) < 0.5,  # the C++ test, on the float32 weight
    )
    return None


def sgd_(params, grads, momentum_buffers, first, lr, weight_decay, momentum, dampening, nesterov,
         maximize) -> str | None:
    """``sgd_`` of ``_fused_cpu.cpp``: ``first[k]`` marks a buffer the step fills with the gradient."""
    why = refusal(params, grads, momentum_buffers)
    if why:
        return why
    with_momentum = bool(momentum_buffers)
    group = _Group((params, grads, momentum_buffers), [float(bool(f)) for f in first] if with_momentum else None)
    group.launch(
        _sgd_kernel, group.table, group.scalars, group.n_tensors, sign=-1.0 if maximize else 1.0,
        wd=float(weight_decay), mu=float(momentum), w=1 - dampening, neg_lr=-lr, MOMENTUM=with_momentum,
        NESTEROV=bool(nesterov),
    )
    return None


def adagrad_(params, grads, sums, minus_clrs, weight_decay, eps, maximize) -> str | None:
    """``adagrad_`` of ``_fused_cpu.cpp``: ``minus_clrs[k]`` is ``-lr / (1 + (t - 1) * lr_decay)``."""
    why = refusal(params, grads, sums)
    if why:
        return why
    group = _Group((params, grads, sums), list(minus_clrs))
    group.launch(
        _adagrad_kernel, group.table, group.scalars, group.n_tensors, sign=-1.0 if maximize else 1.0,
        wd=float(weight_decay), eps=float(eps),
    )
    return None


def lion_(params, grads, exp_avgs, lr, beta1, beta2, weight_decay, maximize) -> str | None:
    """``lion_`` of ``_fused_cpu.cpp``."""
    why = refusal(params, grads, exp_avgs)
    if why:
        return why
    group = _Group((params, grads, exp_avgs))
    group.launch(
        _lion_kernel, group.table, group.scalars, group.n_tensors, sign=-1.0 if maximize else 1.0,
        shrink=1 - lr * weight_decay if weight_decay != 0 else 1.0, b1=float(beta1), w1=1 - beta1,
        b2=float(beta2), w2=1 - beta2, neg_lr=-lr,
    )
    return None


def rmsprop_(params, grads, square_avgs, grad_avgs, momentum_buffers, lr, alpha, eps, weight_decay, momentum,
             maximize) -> str | None:
    """``rmsprop_`` of ``_fused_cpu.cpp``: ``grad_avgs`` empty unless centered, ``momentum_buffers``
    empty without momentum."""
    why = refusal(params, grads, square_avgs, grad_avgs, momentum_buffers)
    if why:
        return why
    w = 1 - alpha
    group = _Group((params, grads, square_avgs, grad_avgs, momentum_buffers))
    group.launch(
        _rmsprop_kernel, group.table, group.scalars, group.n_tensors, sign=-1.0 if maximize else 1.0,
        wd=float(weight_decay), alpha=float(alpha), w=w, eps=float(eps), mu=float(momentum), neg_lr=-lr,
        CENTERED=bool(grad_avgs), MOMENTUM=bool(momentum_buffers),
        SMALL_W=abs(float(torch.tensor(w, dtype=torch.float32))) < 0.5,  # the C++ test, on the float32 weight
    )
    return None


def lamb_(params, grads, exp_avgs, exp_avg_sqs, bias_corrections1, bias_corrections2, lr, beta1, beta2, eps,
          weight_decay, maximize) -> str | None:
    """``lamb_`` of ``_fused_cpu.cpp``: the moments with each program's float64 norm sums, one
    program per tensor adding them into its trust ratio, and the step."""
    why = refusal(params, grads, exp_avgs, exp_avg_sqs)
    if why:
        return why
    group = _Group((params, grads, exp_avgs, exp_avg_sqs), list(zip(bias_corrections1, bias_corrections2)))
    device = params[0].device
    sums = torch.empty(2 * max(group.programs, 1), dtype=torch.float64, device=device)
    ratios = torch.empty(group.n_tensors, dtype=torch.float32, device=device)
    eps, wd = float(eps), float(weight_decay)
    group.launch(
        _lamb_moments_kernel, group.table, group.scalars, sums, group.n_tensors, sign=-1.0 if maximize else 1.0,
        b1=float(beta1), w1=1 - beta1, b2=float(beta2), w2=1 - beta2, eps=eps, wd=wd,
    )
    if group.programs:
        group.launch(_lamb_ratio_kernel, group.table, sums, ratios, grid=(group.n_tensors,), pass_aligned=False,
                     BLOCK=REDUCE_BLOCK)
    group.launch(
        _lamb_step_kernel, group.table, group.scalars, ratios, group.n_tensors, eps=eps, wd=wd, lr=float(lr),
    )
    return None


KERNELS = {
    "adam_": adam_, "sgd_": sgd_, "adagrad_": adagrad_, "lion_": lion_, "rmsprop_": rmsprop_, "lamb_": lamb_,
}
