"""The trained model as a program anyone can run, in two files holding the same computation —
raw features → the run's standardisation → the network → its output in the data's own terms —
so that it needs no Descent code and no knowledge of how the train split was standardised:

* ``model.pt2`` (:data:`PROGRAM_NAME`): a ``torch.export`` program, saved with
  ``torch.export.save`` and read back with ``torch.export.load`` (torch alone);
* ``model.onnx`` (:data:`ONNX_NAME`): the same program converted to ONNX (opset
  :data:`ONNX_OPSET`), for onnxruntime or any ONNX runtime (no torch), input named
  :data:`ONNX_INPUT` and output :data:`ONNX_OUTPUT`.

Both take and give the same thing:

* input: a float32 batch of raw features, ``(batch, *feature_shape)``, as in the uploaded file;
* output: classification — one logit per label (``argmax`` is the prediction; the labels, in
  output order, are in the metadata); regression — the prediction in the target's own units,
  ``(batch,)``;
* metadata (JSON, under the key ``"descent.json"``): the experiment, task, labels, feature shape
  and what the input and output are — in ``model.pt2`` as ``extra_files["descent.json"]``, in
  ``model.onnx`` as the model's ``metadata_props`` entry of that key (:func:`read_onnx_metadata`).

The batch dimension is dynamic (any size from 1 up, ``EXPORT_MAX_BATCH``; named ``batch`` in the
ONNX graph)."""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import logging
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worker.engine import checkpoint

# the file name, next to the run's checkpoints, and the metadata's name inside it
PROGRAM_NAME = "model.pt2"
METADATA = "descent.json"
EXPORT_MAX_BATCH = 1 << 20
ONNX_NAME = "model.onnx"
ONNX_OPSET = 18
ONNX_INPUT = "features"
ONNX_OUTPUT = "output"


class OnnxExportError(Exception):
    """The program holds an operation the ONNX exporter cannot convert.  Not a ``RuntimeError``
    (nor an ``OSError``), so that it is never mistaken for a failed write."""


class Deployed(torch.nn.Module):
    """``x`` raw → ``(x - mean) / std`` → ``model`` → logits, or ``y * target_std + target_mean``."""

    def __init__(self, model: torch.nn.Module, mean: np.ndarray, std: np.ndarray,
                 target_scale: tuple[float, float] | None):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.regression = target_scale is not None
        target_mean, target_std = target_scale or (0.0, 1.0)
        self.register_buffer("target", torch.tensor([target_mean, target_std], dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model((x - self.mean) / self.std)
        if self.regression:
            out = out.squeeze(-1) * self.target[1] + self.target[0]
        return out


def metadata(experiment_id: int, info: Any, feature_shape: tuple[int, ...]) -> dict[str, Any]:
    classification = info.task == "classification"
    return {
        "format": "descent-model/1", "experiment_id": experiment_id, "dataset": info.name, "task": info.task,
        "labels": list(info.class_counts or {}) if classification else None,
        "feature_shape": list(feature_shape),
        "input": "float32 raw features of shape (batch, *feature_shape), unstandardised: the program standardises",
        "output": ("one logit per label, in the order of `labels`; argmax is the prediction" if classification
                   else "the prediction, in the target's own units"),
    }


def export_program(model: torch.nn.Module, mean: np.ndarray, std: np.ndarray,
                   target_scale: tuple[float, float] | None) -> torch.export.ExportedProgram:
    """``model`` (a copy, on the CPU, in eval mode) with its preprocessing, exported."""
    deployed = Deployed(copy.deepcopy(model).cpu().eval(), mean, std, target_scale).eval()
    example = torch.zeros((2, *np.shape(mean)), dtype=torch.float32)
    batch = torch.export.Dim("batch", min=1, max=EXPORT_MAX_BATCH)
    with torch.no_grad():
        return torch.export.export(deployed, (example,), dynamic_shapes={"x": {0: batch}})


def warm() -> None:
    """Export a tiny model once: the first export in a process costs ~1.5 s of tracing machinery
    to load, which a spare training process pays while it waits rather than a run at its end."""
    export_program(torch.nn.Linear(2, 1), np.zeros(2), np.ones(2), None)


def warm_onnx() -> None:
    """Convert a tiny program to ONNX once: the first conversion in a process costs ~3 s (onnxscript
    to import, the operator registry of :func:`_fast_exporter` to build), later ones ~0.5-1 s."""
    onnx_bytes(export_program(torch.nn.Linear(2, 1), np.zeros(2), np.ones(2), None), {})


def write_program(path: Path, program: torch.export.ExportedProgram, meta: dict[str, Any]) -> None:
    """Save atomically (a reader never sees half a file; a refusing disk raises ``StorageError``)."""
    checkpoint.write_atomically(path, program, saver=lambda obj, file: torch.export.save(
        obj, file, extra_files={METADATA: json.dumps(meta)}))


def read_metadata(path: Path) -> dict[str, Any]:
    extra = {METADATA: ""}
    torch.export.load(path, extra_files=extra)
    return json.loads(extra[METADATA])


def onnx_bytes(program: torch.export.ExportedProgram, meta: dict[str, Any]) -> bytes:
    """``program`` converted to a serialised ONNX model (opset :data:`ONNX_OPSET`, input
    :data:`ONNX_INPUT`, output :data:`ONNX_OUTPUT`, dynamic batch dimension ``batch``) with
    ``meta`` as JSON in its ``metadata_props`` under ``"descent.json"``.  ``program`` is not
    changed.

    Every architecture of ``worker.architectures`` converts (linear, mlp, cnn1d, cnn2d, resnet,
    transformer; checked in ``tests/worker/test_export.py``).  A model with an operation the
    exporter has no ONNX translation for raises :class:`OnnxExportError`, naming the operation.
    The conversion is quiet: torch.onnx's progress lines, report and warnings are swallowed."""
    options = dict(input_names=[ONNX_INPUT], output_names=[ONNX_OUTPUT], opset_version=ONNX_OPSET,
                   verbose=False, report=False, optimize=True)
    try:
        with _quiet():
            try:
                convert, registry = _fast_exporter()
                onnx_program = convert(program, registry=registry, **options)
            except (ImportError, AttributeError, TypeError):  # torch moved its internals: the public way
                onnx_program = torch.onnx.export(program, dynamo=True, **options)
            model = onnx_program.model_proto
    except Exception as exc:  # the exporter raises its own errors, RuntimeErrors, NotImplementedErrors...
        raise OnnxExportError(f"the model cannot be converted to ONNX: {_reason(exc)}") from exc
    _name_batch_dimension(model.graph)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA, json.dumps(meta)
    return model.SerializeToString()


def write_onnx(path: Path, program: torch.export.ExportedProgram, meta: dict[str, Any]) -> None:
    """:func:`onnx_bytes` of ``program``, saved atomically (a reader never sees half a file; a
    refusing disk raises ``StorageError``).  The conversion comes first, outside the write: a model
    that does not convert raises :class:`OnnxExportError` and leaves no file."""
    data = onnx_bytes(program, meta)
    checkpoint.write_atomically(path, data, saver=lambda blob, file: file.write(blob))


def read_onnx_metadata(path: Path) -> dict[str, Any]:
    import onnx  # only here: the worker's other paths need not load it

    model = onnx.load(str(path), load_external_data=False)
    (value,) = [entry.value for entry in model.metadata_props if entry.key == METADATA]
    return json.loads(value)


@functools.cache
def _fast_exporter() -> tuple[Any, Any]:
    """``torch.onnx.export(program, dynamo=True)`` is this function with a registry of every
    operator's ONNX translation that it rebuilds on each call, ~1 s of the ~1.5 s it takes for a
    small model; built once here and kept (the process that exports is a training process, which
    exports many times).  Private API: if torch changes it, :func:`onnx_bytes` takes the public way."""
    from torch.onnx._internal.exporter import _core, _registration

    return _core.export, _registration.ONNXRegistry().from_torchlib(opset_version=ONNX_OPSET)


# the converter's loggers: its passes log every step at INFO, which a worker's INFO log would show
_CHATTY = ("torch.onnx", "onnxscript", "onnx_ir")


@contextlib.contextmanager
def _quiet():
    """torch.onnx prints its steps to stdout, logs through its loggers (e.g. that
    torchvision's operators are skipped) and warns (deprecations); none of it is the caller's."""
    loggers = [logging.getLogger(name) for name in _CHATTY]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _reason(exc: BaseException) -> str:
    """The first line of each error in the chain under the exporter's generic one (which node,
    then why), without the terminal colours it puts in."""
    chain: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 6:
        line = re.sub(r"\x1b\[[0-9;]*m", "", (str(seen).strip().splitlines() or [""])[0])
        chain.append(f"{type(seen).__name__}: {line[:300]}")
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(chain[1:] or chain)


def _name_batch_dimension(graph: Any) -> None:
    """The exporter names the dynamic batch dimension after its symbol (``s77``); call it ``batch``."""
    symbols = {value.type.tensor_type.shape.dim[0].dim_param for value in graph.input} - {""}
    for value in [*graph.input, *graph.output, *graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in symbols:
                dim.dim_param = "batch"
