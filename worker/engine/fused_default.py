"""Whether a training steps through the fused CPU kernel (``optim._fused``) by default.

On CPU, ``foreach=None`` means the per-tensor loop: a Python iteration and several elementwise
passes per tensor each step.  The fused kernel makes one call per parameter group and one pass
per tensor, 1.5-3.6x faster at 10M parameters (docs/benchmarks.md, "Fused steps"), and most
for small models, whose step is mostly the loop's overhead.  Its arithmetic is the foreach
path's, operation by operation, so a run agrees with the default path to float32 rounding.

The engine passes ``fused=True`` when all of these hold (:func:`wanted`, in this order):

* every parameter is on the CPU (on a GPU ``foreach=None`` already picks torch's multi-tensor kernels,
  and the Triton fused kernels trained the engine's models at 0.88-0.91x their samples per second
  on an H200: their per-step host work outweighs what they save; docs/benchmarks.md, "CUDA");
* the solver has a fused step (``optim.factory.has_fused_step``; a wrapper through its base);
* the spec does not choose the path itself (a ``foreach`` or ``fused`` among the solver's
  hyperparameters: the catalog has neither field today, so this keeps a future one's value);
* every parameter is real float32 or float64 (the kernel's dtypes; others fall back with a warning);
* the kernel is ready without compiling (``optim._fused.ready``): a run never waits for the
  compiler; until a training worker's start-up build (``worker.celery_app``) has put it on disk,
  runs take the default path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from optim import _fused
from optim.factory import has_fused_step

# solver hyperparameters that choose the update path; a spec naming one keeps its choice
PATH_FIELDS = ("foreach", "fused")
FUSED_DTYPES = (torch.float32, torch.float64)

FUSED = "fused CPU kernel"


def kernel_ready() -> bool:
    """``optim._fused.ready``, looked up at each call (tests replace it here)."""
    return _fused.ready()


def wanted(
    *, devices: Iterable[str], dtypes: Iterable[torch.dtype], capable: bool, spec_chooses: bool,
    ready: Callable[[], bool],
) -> tuple[bool, str]:
    """The rule: ``(use fused, why)``, ``why`` naming the path taken in a word or two.  ``ready`` is
    asked last, only when all else allows fused (it may load the library: about 0.1 s)."""
    devices, dtypes = set(devices), set(dtypes)
    if not devices or devices != {"cpu"}:
        return False, "default path (parameters not on the CPU)"
    if not capable:
        return False, "default path (the solver has no fused step)"
    if spec_chooses:
        return False, "path the spec chose"
    if not dtypes <= set(FUSED_DTYPES):
        return False, f"default path ({', '.join(sorted(str(d).removeprefix('torch.') for d in dtypes))} parameters)"
    if not ready():
        return False, "default path (fused kernel not built yet)"
    return True, FUSED


def spec_chooses(hparams: dict) -> bool:
    """Whether the spec names the update path itself: a :data:`PATH_FIELDS` hyperparameter set."""
    return any(hparams.get(k) is not None for k in PATH_FIELDS)


def choose(solver_name: str, hparams: dict, params: list[torch.Tensor]) -> tuple[bool, str]:
    """:func:`wanted` for a run: its solver, solver hyperparameters (catalog names) and parameters."""
    return wanted(
        devices=(p.device.type for p in params),
        dtypes=(p.dtype for p in params),
        capable=has_fused_step(solver_name, hparams),
        spec_chooses=spec_chooses(hparams),
        ready=kernel_ready,
    )
