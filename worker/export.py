"""The trained model as a program anyone can run with torch alone: a ``torch.export`` program of
raw features → the run's standardisation → the network → its output in the data's own terms,
saved with ``torch.export.save`` (``model.pt2``) and read back with ``torch.export.load`` —
no Descent code, no knowledge of how the train split was standardised.

* input: a float32 batch of raw features, ``(batch, *feature_shape)``, as in the uploaded file;
* output: classification — one logit per label (``argmax`` is the prediction; the labels, in
  output order, are in the metadata); regression — the prediction in the target's own units;
* metadata (``extra_files["descent.json"]``, JSON): the experiment, task, labels, feature shape
  and what the input and output are.

The batch dimension is dynamic (any size from 1 up, ``EXPORT_MAX_BATCH``)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worker.engine import checkpoint

# the file name, next to the run's checkpoints, and the metadata's name inside it
PROGRAM_NAME = "model.pt2"
METADATA = "descent.json"
EXPORT_MAX_BATCH = 1 << 20


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


def write_program(path: Path, program: torch.export.ExportedProgram, meta: dict[str, Any]) -> None:
    """Save atomically (a reader never sees half a file; a refusing disk raises ``StorageError``)."""
    checkpoint.write_atomically(path, program, saver=lambda obj, file: torch.export.save(
        obj, file, extra_files={METADATA: json.dumps(meta)}))


def read_metadata(path: Path) -> dict[str, Any]:
    extra = {METADATA: ""}
    torch.export.load(path, extra_files=extra)
    return json.loads(extra[METADATA])
