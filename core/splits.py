"""Splits: their index lists computed with scikit-learn's splitters (the caller freezes them),
and ``SplitArrays``, the rows of each part that the worker trains on."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.choices import choice
from core.datasets.builtin import DatasetInfo

SplitStrategy = choice(
    "SplitStrategy", ("random", "stratified"),
    "How rows are assigned to train/val/test: uniformly at random, or keeping each class's share in every "
    "part (classification only).",
)


@dataclass(frozen=True)
class SplitArrays:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    info: DatasetInfo


class SplitError(ValueError):
    pass


def part_sizes(n: int, fractions: dict[str, float]) -> dict[str, int]:
    test = round(n * fractions.get("test", 0.0))
    val = round(n * fractions.get("val", 0.0))
    train = n - val - test
    if train < 1:
        raise SplitError(f"{n} samples leave no training rows at fractions {fractions}")
    return {"train": train, "val": val, "test": test}


def make_split(y: np.ndarray, task: str, strategy: SplitStrategy, fractions: dict[str, float], seed: int
               ) -> dict[str, np.ndarray]:
    """``{"train", "val", "test"}`` → sorted row indices; stratified keeps class proportions."""
    from sklearn.model_selection import train_test_split  # only when splitting: the api starts faster

    if strategy == "stratified" and task != "classification":
        raise SplitError("stratified splits need class labels; this dataset is regression")
    n = len(y)
    sizes = part_sizes(n, fractions)
    index = np.arange(n)
    parts: dict[str, np.ndarray] = {}
    rest, rest_y = index, y
    try:
        for part in ("test", "val"):
            if sizes[part] == 0:
                parts[part] = np.empty(0, dtype=np.int64)
                continue
            stratify = rest_y if strategy == "stratified" else None
            rest, taken, rest_y, _ = train_test_split(
                rest, rest_y, test_size=sizes[part], random_state=seed, shuffle=True, stratify=stratify
            )
            parts[part] = taken
    except ValueError as exc:  # e.g. a class with a single member cannot be stratified
        raise SplitError(str(exc)) from None
    parts["train"] = rest
    return {k: np.sort(v).astype(np.int64) for k, v in parts.items()}


def describe(y: np.ndarray, parts: dict[str, np.ndarray], classes: list[str] | None) -> dict[str, Any]:
    """Sizes and class counts per part, as stored and shown."""
    summary: dict[str, Any] = {"sizes": {k: int(len(v)) for k, v in parts.items()}, "class_counts": None}
    if classes is not None:
        counts = {}
        for part, idx in parts.items():
            per = np.bincount(y[idx], minlength=len(classes)) if len(idx) else np.zeros(len(classes), int)
            counts[part] = {label: int(c) for label, c in zip(classes, per)}
        summary["class_counts"] = counts
    return summary


def fractions_ok(fractions: dict[str, float]) -> bool:
    return math.isclose(sum(fractions.values()), 1.0, abs_tol=1e-6)
