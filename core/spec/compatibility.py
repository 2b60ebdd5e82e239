"""Solver, architecture and batching combinations the worker cannot train, found before a run
starts (no torch).  Each rule says which field to change and why:

* ``naturalgradient`` takes per-sample gradients with ``torch.func.vmap`` over one sample at a
  time: dropout's random masks cannot be drawn inside it (torch: "vmap: called random operation
  while in randomness error mode"), and batch normalisation mixes the samples of a batch and
  updates its running statistics in place (torch: "attempted to call in-place operation ... that
  would mutate a captured Tensor").
* ``newton`` and ``hessianfree`` differentiate the gradient once more; the transformer's attention
  runs in torch's fused scaled-dot-product kernels, which have no second derivative (torch:
  "derivative for aten::_scaled_dot_product_flash_attention_for_cpu_backward is not implemented";
  CUDA's flash and memory-efficient kernels have none either).
* Batch normalisation in training needs more than one value per channel: a batch of one sample
  (``batch_size`` 1, or a last batch of one when ``n_train % batch_size == 1``) fails where the
  normalised feature map is a single value (an MLP's hidden layer; a ResNet stage at 1x1).
"""

from __future__ import annotations

from typing import Any

from core.spec.architectures import image_shape

Location = tuple[str | int, ...]

PER_SAMPLE_GRADIENT_SOLVERS = ("naturalgradient",)
SECOND_DERIVATIVE_SOLVERS = ("newton", "hessianfree")
FUSED_ATTENTION_ARCHITECTURES = ("transformer",)


def compatibility_errors(spec: Any, feature_shape: tuple[int, ...], n_train: int) -> list[tuple[Location, str]]:
    """The rules above for ``spec`` (a ``core.spec.ExperimentSpec``) on ``n_train`` train samples of
    ``feature_shape``, as ``(location, message)`` pairs like ``SpecError``'s; empty when it trains."""
    arch, hparams = spec.architecture.name, spec.architecture_hparams()
    solver = spec.solver.name
    batch = n_train if spec.training.batch_size is None else min(spec.training.batch_size, n_train)
    return [
        *per_sample_gradient_errors(solver, arch, hparams),
        *second_derivative_errors(solver, arch),
        *single_sample_batch_norm_errors(arch, hparams, feature_shape, n_train, max(1, batch)),
    ]


def per_sample_gradient_errors(solver: str, arch: str, hparams: dict[str, Any]) -> list[tuple[Location, str]]:
    if solver not in PER_SAMPLE_GRADIENT_SOLVERS:
        return []
    why = f"{solver} takes per-sample gradients (torch.func.vmap over one sample at a time)"
    errors: list[tuple[Location, str]] = []
    if hparams.get("dropout", 0.0) > 0:
        errors.append((("architecture", arch, "dropout"), (
            f"dropout: {why}, which cannot draw dropout's random masks; set dropout to 0 or choose another solver"
        )))
    if hparams.get("normalization") == "batch":
        errors.append((("architecture", arch, "normalization"), (
            f"normalization: {why}, and batch normalisation mixes the samples of a batch; choose 'layer' or "
            "'none', or another solver"
        )))
    if arch == "resnet":
        errors.append((("solver", solver), (
            f"{why}, and resnet's batch normalisation mixes the samples of a batch; choose another solver "
            "(kfac also preconditions with curvature) or another architecture"
        )))
    return errors


def second_derivative_errors(solver: str, arch: str) -> list[tuple[Location, str]]:
    if solver not in SECOND_DERIVATIVE_SOLVERS or arch not in FUSED_ATTENTION_ARCHITECTURES:
        return []
    return [(("solver", solver), (
        f"{solver} needs second derivatives of the loss, and the {arch}'s attention runs in torch's fused "
        "scaled-dot-product kernels, which have none; choose another solver (lbfgs needs only gradients) "
        "or another architecture"
    ))]


def single_sample_batch_norm_errors(arch: str, hparams: dict[str, Any], feature_shape: tuple[int, ...],
                                    n_train: int, batch: int) -> list[tuple[Location, str]]:
    """A batch of one sample reaching a batch normalisation whose channels hold one value each."""
    if not _batch_norm_on_single_values(arch, hparams, feature_shape):
        return []
    if batch == 1:
        which = "every batch holds one sample"
    elif n_train % batch == 1:
        which = f"with {n_train} train samples the last batch of every epoch holds one sample"
    else:
        return []
    why = f"{which}, and batch normalisation cannot normalise a single value per channel"
    better = _batch_size_without_single(n_train, batch)
    if better is None:  # one train sample: no batch size helps
        field = "normalization" if arch == "mlp" else None
        if field:
            return [(("architecture", arch, field), f"normalization: {why}; choose 'layer' or 'none'")]
        return [(("architecture",), f"{why}; choose an architecture without batch normalisation")]
    fix = "choose 'layer' or 'none' normalization" if arch == "mlp" else "choose another architecture"
    return [(("training", "batch_size"), f"{why}; choose a batch_size such as {better}, or {fix}")]


def _batch_norm_on_single_values(arch: str, hparams: dict[str, Any], feature_shape: tuple[int, ...]) -> bool:
    if arch == "mlp":
        return hparams.get("normalization") == "batch"
    if arch == "resnet":
        shape = image_shape(tuple(feature_shape))
        if shape is None:
            return False
        _, h, w = shape
        for _ in range(hparams.get("stages", 2) - 1):  # each later stage halves: floor((H - 1) / 2) + 1
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        return h * w == 1
    return False


def _batch_size_without_single(n_train: int, batch: int) -> int | None:
    """The batch size nearest ``batch`` (larger first) that leaves no one-sample batch."""
    for delta in range(1, n_train + 1):
        for candidate in (batch + delta, batch - delta):
            if 2 <= candidate <= n_train and n_train % candidate != 1:
                return candidate
    return None


__all__ = [
    "compatibility_errors", "per_sample_gradient_errors", "second_derivative_errors",
    "single_sample_batch_norm_errors",
]
