"""A split's numpy arrays → standardised tensors ready for training, and the batches of an epoch.

Standardisation (per feature; for regression also the target) is fitted on the train part only,
so validation and test data never leak into training.  A dataset small enough lives on the
training device and batches are gathered there by an index permutation (no DataLoader, no
copies per step); a larger one stays in host memory and each batch is copied over as it is
needed.  The permutation comes from a seeded generator whose state a checkpoint saves."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.datasets.builtin import DatasetInfo
from core.splits import SplitArrays

# Datasets up to this size are moved to the device whole; larger ones stream batch by batch.
DEVICE_RESIDENT_BYTES = 1 << 30
EVAL_CHUNK = 4096


@dataclass
class Part:
    """One part of the split as tensors (on the device, or in host memory when streamed)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return self.x.shape[0]


@dataclass
class TrainingData:
    train: Part
    val: Part
    test: Part
    info: DatasetInfo
    device: torch.device
    n_outputs: int
    # mean and std of the regression target on the train part (R² is scale free; losses are
    # reported in standardised units)
    target_scale: tuple[float, float] | None = None
    # the features' mean and std on the train part, which standardised every part (the exported
    # model applies them to raw features)
    feature_scale: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def resident(self) -> bool:
        return self.train.x.device == self.device

    def chunks(self, part: Part) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``part`` in evaluation chunks on the device."""
        for start in range(0, len(part), EVAL_CHUNK):
            yield self._to_device(part.x[start:start + EVAL_CHUNK]), self._to_device(part.y[start:start + EVAL_CHUNK])

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The train samples at ``index`` (a tensor on the train data's device), on the device."""
        return self._to_device(self.train.x[index]), self._to_device(self.train.y[index])

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        return t if t.device == self.device else t.to(self.device, non_blocking=True)


def feature_scale(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std of the train part (a constant feature's std is 1: it stays at zero)."""
    mean = train.mean(axis=0, dtype=np.float64)
    std = train.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0  # a constant feature (digits' blank corner pixels) stays at zero
    return mean, std


def _standardise(mean: np.ndarray, std: np.ndarray, *parts: np.ndarray) -> list[np.ndarray]:
    return [((a - mean) / std).astype(np.float32) for a in parts]


def prepare(split: SplitArrays, device: torch.device | str = "cpu", *,
            resident_limit: int = DEVICE_RESIDENT_BYTES) -> TrainingData:
    """Standardise ``split`` on its train part and place it for training on ``device``."""
    device = torch.device(device)
    info = split.info
    raw = [np.asarray(x, dtype=np.float32) for x in (split.x_train, split.x_val, split.x_test)]
    scale = feature_scale(raw[0])
    x_train, x_val, x_test = _standardise(*scale, *raw)
    target_scale = None
    if info.task == "classification":
        ys = [np.asarray(y, dtype=np.int64) for y in (split.y_train, split.y_val, split.y_test)]
        n_outputs = int(info.n_classes or int(max(int(y.max(initial=0)) for y in ys)) + 1)
    else:
        y_train = np.asarray(split.y_train, dtype=np.float64)
        mean, std = float(y_train.mean()), float(y_train.std() or 1.0)
        target_scale = (mean, std)
        ys = [((np.asarray(y, dtype=np.float64) - mean) / std).astype(np.float32)
              for y in (split.y_train, split.y_val, split.y_test)]
        n_outputs = 1
    total = sum(a.nbytes for a in (x_train, x_val, x_test, *ys))
    home = device if total <= resident_limit else torch.device("cpu")
    pin = home.type == "cpu" and device.type == "cuda"

    def tensor(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a))
        return t.pin_memory() if pin else t.to(home)

    parts = [Part(tensor(x), tensor(y)) for x, y in zip((x_train, x_val, x_test), ys)]
    return TrainingData(*parts, info=info, device=device, n_outputs=n_outputs, target_scale=target_scale,
                        feature_scale=scale)


class BatchOrder:
    """Per-epoch index permutations from a seeded generator; ``None`` batch size is full batch."""

    def __init__(self, n: int, batch_size: int | None, seed: int, device: torch.device):
        self.n = n
        self.batch_size = n if batch_size is None else min(batch_size, n)
        self.device = device
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def epoch(self) -> list[torch.Tensor]:
        if self.batch_size == self.n:
            return [torch.arange(self.n, device=self.device)]
        order = torch.randperm(self.n, generator=self.generator).to(self.device)
        return list(order.split(self.batch_size))

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
