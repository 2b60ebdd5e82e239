"""The ``fused=True`` path: one compiled kernel per parameter group per step (C++ on CPU, Triton on CUDA).

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
dispatch cost per call.  It is compiled with ``-O3 -fno-math-errno -ffp-contract=off -fopenmp``
(OpenMP for ``at::parallel_for``'s threads and LAMB's vectorised norm sums) and no
``-march=native``, so a cache shared between machines stays valid: each loop is built for AVX-512,
AVX2 and the baseline ISA and the CPU picks one when the library loads (function multiversioning,
as torch's own kernels dispatch on CPU capability); ``-ffp-contract=off`` keeps every rounding
step of the foreach arithmetic.

CUDA tensors take Triton kernels instead (``optim._fused_triton``, one for each C++ kernel: the
same arithmetic in float32; Triton comes with torch's CUDA wheels and is imported on the first
such step).  Where no kernel applies (CUDA tensors other than float32, other devices, dtypes other than float32/float64, non-contiguous or
sparse tensors, no compiler, a failed build) the step falls back to the
foreach path and warns once per process for each reason.  This is torch's flag with torch's
rules (RMSprop, which has no such argument in torch, takes it as a parameter-group key so that
its signature stays torch's): ``fused=True`` selects it, and ``fused`` together with ``foreach=True`` is an error
(:class:`FlagError`, both the ``ValueError`` of our checks and torch's ``RuntimeError``).

Whether a fused step can run now without waiting for a compiler is :func:`ready` (loaded here,
or built on disk and loaded in about 0.1 s); :func:`warm` builds it.  Code that turns the flag
on by default (the training engine) asks :func:`ready` and leaves building to a long-lived
process's start-up (a training worker's), so no run waits a minute for the compiler.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import threading
import time
import warnings

import torch

try:
    import fcntl
except ImportError:  # Windows: no flock, so torch's own lock file alone guards a build there
    fcntl = None

SOURCE = os.path.join(os.path.dirname(__file__), "_fused_cpu.cpp")
EXTENSION = "descent_fused_cpu"
# -fopenmp: ``at::parallel_for`` is a header template whose ``#pragma omp parallel`` compiles into
# this library, so without it every kernel ran on one thread whatever ``torch.set_num_threads``
# said (half the speed of torch's fused kernels on two cores).  The library then needs
# ``libgomp.so.1``, which torch's own ``libtorch_cpu`` has loaded already (torch/lib), so both
# share one OpenMP runtime and its thread count.
CFLAGS = ["-O3", "-fno-math-errno", "-ffp-contract=off", "-fopenmp"]
LDFLAGS = ["-fopenmp"]

# Every build or load of the extension holds an ``fcntl.flock`` on this file of the build
# directory, which the kernel releases however its holder ends (kill -9 too).  torch's own lock,
# the file ``lock`` (a ``FileBaton``, made for every load as well as every build), is left behind
# by a process killed while holding it, and torch waits on it for ever: one killed worker hung
# every later process's first fused step.  Under the flock, a ``lock`` file can only be such a
# leftover, so the holder removes it before calling torch.
BUILD_LOCK = "descent-build.lock"
# how long a process waits for another's build (about a minute of one core; more on a loaded
# machine) before it takes the foreach path
BUILD_WAIT_S = 600.0

# the operators with a Triton kernel (``optim._fused_triton``) for CUDA tensors; the others fall back there
TRITON_OPS = frozenset({"adam_", "sgd_", "adagrad_", "lion_", "rmsprop_", "lamb_"})
# route CPU tensors of those operators through the Triton kernels too: for tests, which run them in
# Triton's interpreter (``TRITON_INTERPRET=1`` before Triton is imported); never set otherwise
TRITON_ON_CPU = False

_warned: set[str] = set()
# held while this process builds or loads the extension, so that :func:`ready` never waits on it
_lock = threading.Lock()


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
            # copies: torch appends to the lists it is given, which would change the next call's hash
            name=EXTENSION, sources=[SOURCE], extra_cflags=list(CFLAGS), extra_ldflags=list(LDFLAGS),
            is_python_module=False, verbose=False,
        )
    except Exception as error:  # a missing compiler or ninja, a failed build: all mean "use foreach"
        lines = str(error).strip().splitlines()
        raise BuildError(f"{type(error).__name__}: {lines[-1] if lines else ''}") from error
    return torch.ops.descent_fused


@functools.cache
def _build_outcome():
    """(operators, None) or (None, why not): the build is tried once per process."""
    with _lock:
        try:
            directory = _build_directory()
            with _build_lock(directory, BUILD_WAIT_S):
                if fcntl is not None:
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(os.path.join(directory, "lock"))  # a killed process's: see BUILD_LOCK
                return _build(), None
        except BuildError as error:
            return None, str(error)
        except OSError as error:  # the extension cache cannot be made or opened (a read-only home, say)
            return None, f"{type(error).__name__}: {error}"


@contextlib.contextmanager
def _build_lock(directory: str, wait_s: float):
    """Hold the build directory's :data:`BUILD_LOCK`, waiting up to ``wait_s`` seconds for another
    process's build; :class:`BuildError` after that.  Without ``fcntl`` (Windows) it holds nothing."""
    if fcntl is None:
        yield
        return
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(os.path.join(directory, BUILD_LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise BuildError(f"cannot lock the build directory {directory}: {error}") from error
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BuildError(f"another process has been building the extension in {directory} for over "
                                     f"{wait_s:.0f} s") from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # releases the flock


def _build_in_progress(directory: str) -> bool:
    """Whether a process (this one's other thread too) holds :data:`BUILD_LOCK` now (without
    ``fcntl``: whether torch's lock file is there)."""
    if fcntl is None:
        return os.path.exists(os.path.join(directory, "lock"))
    try:
        fd = os.open(os.path.join(directory, BUILD_LOCK), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _tried() -> bool:
    return _build_outcome.cache_info().currsize > 0


def _reset_lock_after_fork() -> None:
    global _lock
    _lock = threading.Lock()  # a fork during another thread's build copies the lock held, and no one would release it


os.register_at_fork(after_in_child=_reset_lock_after_fork)


def supports(cls) -> bool:
    """Whether the optimizer class ``cls`` has a fused step: an ``optim._base.Optimizer`` whose
    ``_update_functions`` name a third function (SGD, Adam, AdamW and their 8-bit forms, RMSprop,
    Adagrad, Lion, LAMB).  The functions are module-level, so no instance is needed to ask."""
    from optim._base import Optimizer

    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        return False
    try:
        return len(cls._update_functions(None)) > 2
    except NotImplementedError:
        return False


def _build_directory() -> str:
    from torch.utils import cpp_extension

    return cpp_extension._get_build_directory(EXTENSION, verbose=False)


def _built_on_disk() -> bool:
    """Whether ``cpp_extension.load`` would only load the library, not compile it: a library
    newer than the source, built with this source and these flags (torch rewrites build.ninja,
    and so rebuilds, when either changes), no build in progress (:data:`BUILD_LOCK` held; torch's
    ``lock`` file alone is a leftover the load removes), and ninja, asked for a dry run, with
    nothing to do.  Costs one ``ninja -n`` (milliseconds)."""
    try:
        directory = _build_directory()
        library = os.path.join(directory, f"{EXTENSION}.so")
        if _build_in_progress(directory) or not os.path.exists(library):
            return False
        if os.path.getmtime(library) < os.path.getmtime(SOURCE):
            return False
        with open(os.path.join(directory, "build.ninja")) as file:
            rules = file.read()
        if SOURCE not in rules or not _has_flags(rules, "cflags", CFLAGS) or not _has_flags(rules, "ldflags", LDFLAGS):
            return False
        ninja = shutil.which("ninja")
        if ninja is None:
            return False
        dry = subprocess.run([ninja, "-n", "-C", directory], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return dry.returncode == 0 and "no work to do" in dry.stdout


def _has_flags(rules: str, key: str, flags: list[str]) -> bool:
    """Whether build.ninja's ``key = ...`` line holds ``flags`` as whole words in a row (as text,
    ``-fopenmp`` would also match an earlier build's ``-fopenmp-simd``)."""
    for line in rules.splitlines():
        if line.startswith(f"{key} ="):
            words = line.split("=", 1)[1].split()
            return any(words[i:i + len(flags)] == flags for i in range(len(words) - len(flags) + 1))
    return False


def ready() -> bool:
    """Whether a fused step can run now without compiling: the extension is loaded in this
    process, or loads from the on-disk cache (:func:`_built_on_disk`, then the load: about 0.1 s
    in a fresh process, mostly importing ``torch.utils.cpp_extension``).  False when it is not built yet, is being built (here or by another
    process), or failed to build; never waits for a compiler."""
    if _tried():
        return _build_outcome()[0] is not None
    if _lock.locked() or not _built_on_disk():
        return False
    return _build_outcome()[0] is not None


def failure() -> str | None:
    """Why the extension did not build or load in this process; None when it did or was not tried."""
    return _build_outcome()[1] if _tried() else None


def warm() -> bool:
    """Build the extension (first use on a machine: about a minute of one core) or load it, in
    this process; True once it is usable.  What a training worker runs in a thread at start-up,
    so that its runs find :func:`ready` true."""
    return _build_outcome()[0] is not None


def warn_once(reason: str) -> None:
    """One warning per process for each reason the fused path was not taken."""
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"fused=True: {reason}; using the foreach path instead", RuntimeWarning, stacklevel=3)


@functools.cache
def _triton_outcome():
    """(``optim._fused_triton``, None) or (None, why Triton did not import): tried once per
    process, on the first fused step of CUDA tensors, so CPU-only processes never import it."""
    try:
        from optim import _fused_triton
    except Exception as error:  # not installed, or an install that fails to import: both mean "use foreach"
        lines = str(error).strip().splitlines()
        return None, f"{type(error).__name__}: {lines[-1] if lines else ''}"
    return _fused_triton, None


def _wants_triton(op: str, params) -> bool:
    """CUDA tensors of an optimizer with a Triton kernel; CPU tensors too where
    :data:`TRITON_ON_CPU` is set (tests, in Triton's interpreter)."""
    if op not in TRITON_OPS or not params:
        return False
    return params[0].is_cuda or (TRITON_ON_CPU and params[0].device.type == "cpu")


def run(op: str, *args) -> bool:
    """Call the kernel ``torch.ops.descent_fused.<op>`` with ``args`` (for CUDA tensors, its Triton
    twin in ``optim._fused_triton``); True if it ran.  False, after :func:`warn_once` says why,
    when it did not build or refused the tensors (it checks them all before writing any, so the
    caller's foreach fallback starts from untouched state)."""
    if _wants_triton(op, args[0]):
        module, error = _triton_outcome()
        if module is None:
            warn_once(f"Triton, which runs the fused steps of CUDA tensors, did not import ({error})")
            return False
        refused = module.KERNELS[op](*args)
        if refused:
            warn_once(refused)
        return not refused
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
