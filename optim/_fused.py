"""The ``fused=True`` path: one compiled CPU kernel per parameter group per step.

What fused means here: the update of every tensor of a parameter group is one call into
``_fused_cpu.cpp``, which walks each tensor once, reading the parameter, its gradient and its
state once and writing each once (the foreach path makes 6 or more elementwise passes, each
reading and writing whole tensors).  Chunks of a tensor run in parallel through
``at::parallel_for``, so ``torch.set_num_threads`` bounds it like any torch kernel.  The arithmetic
is the foreach path's, operation by operation in the tensor's own precision, so the two agree to
rounding (bit for bit where the compiler emits no fused multiply-add).

Why a C++ extension and not ``torch.compile``: the source is small and built once per machine
with ``torch.utils.cpp_extension.load`` (cached on disk under ``TORCH_EXTENSIONS_DIR``, by
default ``~/.cache/torch_extensions``; the first build takes about a minute, later processes load
it in well under a second), while Inductor compiles again for every new set of shapes and
hyperparameters (learning-rate schedules change a scalar every step) and adds its own
dispatch cost per call.  It is compiled with ``-O3 -fno-math-errno -ffp-contract=off`` (and
``-fopenmp-simd`` for LAMB's vectorised norm sums) and no
``-march=native``, so a cache shared between machines stays valid: each loop is built for AVX-512,
AVX2 and the baseline ISA and the CPU picks one when the library loads (function multiversioning,
as torch's own kernels dispatch on CPU capability); ``-ffp-contract=off`` keeps every rounding
step of the foreach arithmetic.

Where the kernel does not apply (tensors not on the CPU, dtypes other than float32/float64,
non-contiguous or sparse tensors, no compiler, a failed build) the step falls back to the
foreach path and warns once per process for each reason.  This is torch's flag with torch's
rules (RMSprop, which has no such argument in torch, takes it as a parameter-group key so that
its signature stays torch's): ``fused=True`` selects it, and ``fused`` together with ``foreach=True`` is an error
(:class:`FlagError`, both the ``ValueError`` of our checks and torch's ``RuntimeError``).
"""

from __future__ import annotations

import functools
import os
import warnings

import torch

SOURCE = os.path.join(os.path.dirname(__file__), "_fused_cpu.cpp")
EXTENSION = "descent_fused_cpu"
CFLAGS = ["-O3", "-fno-math-errno", "-ffp-contract=off", "-fopenmp-simd"]

_warned: set[str] = set()


class FlagError(ValueError, RuntimeError):
    """A bad ``fused`` setting: a ``ValueError`` like our other argument checks and a
    ``RuntimeError`` like torch's, so code written for either catches it."""


def check_flags(*, fused, foreach) -> None:
    """torch's constructor rule for ``fused`` (torch/optim/adam.py): not with ``foreach=True``
    (``differentiable=True`` is refused for every path by ``reject_unsupported``)."""
    if fused and foreach:
        raise FlagError("Invalid fused: fused and foreach cannot be True together")


class BuildError(RuntimeError):
    """The extension could not be compiled or loaded."""


def _build():
    """Build (first use on a machine) or load the extension; its operators are then
    ``torch.ops.descent_fused``.  Raises :class:`BuildError` with the reason."""
    try:
        from torch.utils import cpp_extension

        cpp_extension.load(
            name=EXTENSION, sources=[SOURCE], extra_cflags=CFLAGS, is_python_module=False, verbose=False,
        )
    except Exception as error:  # a missing compiler or ninja, a failed build: all mean "use foreach"
        lines = str(error).strip().splitlines()
        raise BuildError(f"{type(error).__name__}: {lines[-1] if lines else ''}") from error
    return torch.ops.descent_fused


@functools.cache
def _build_outcome():
    """(operators, None) or (None, why not): the build is tried once per process."""
    try:
        return _build(), None
    except BuildError as error:
        return None, str(error)


def warn_once(reason: str) -> None:
    """One warning per process for each reason the fused path was not taken."""
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"fused=True: {reason}; using the foreach path instead", RuntimeWarning, stacklevel=3)


def run(op: str, *args) -> bool:
    """Call the kernel ``torch.ops.descent_fused.<op>`` with ``args``; True if it ran.  False, after
    :func:`warn_once` says why, when it did not build or refused the tensors (it checks them all
    before writing any, so the caller's foreach fallback starts from untouched state)."""
    ops, error = _build_outcome()
    if ops is None:
        warn_once(f"the CPU kernel did not build ({error})")
        return False
    try:
        getattr(ops, op)(*args)
    except RuntimeError as refusal:
        message = str(refusal).strip().splitlines()[0] if str(refusal).strip() else ""
        if not message.startswith("fused: "):
            raise
        warn_once(message.removeprefix("fused: "))
        return False
    return True
