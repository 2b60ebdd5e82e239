"""Built-in datasets: scikit-learn's bundled tables and generated 2-D problems.

Every loader is deterministic (generated sets use a fixed seed), so a split's frozen indices
always point at the same rows.  Arrays are ``x: float32 (N, ...)`` and ``y: int64 (N,)`` for
classification or ``float32 (N,)`` for regression."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from pydantic import BaseModel

from core.choices import choice

Task = choice("TaskType", ("classification", "regression"),
              "What a dataset's labels are: class indices (classification) or real values (regression).")
DatasetSource = choice("DatasetSource", ("builtin", "upload"),
                       "Where a dataset comes from: bundled with Descent (builtin) or uploaded by a user.")


class DatasetInfo(BaseModel):
    """What the api and the dashboard show about a dataset and what validation needs."""

    name: str
    source: DatasetSource
    description: str = ""
    n_samples: int
    feature_shape: tuple[int, ...]
    task: Task
    n_classes: int | None = None
    class_counts: dict[str, int] | None = None


@dataclass(frozen=True)
class _Builtin:
    description: str
    load: Callable[[], tuple[np.ndarray, np.ndarray]]
    task: Task = "classification"


def _sklearn(loader_name: str) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    def load():
        from sklearn import datasets

        bunch = getattr(datasets, loader_name)()
        return bunch.data, bunch.target

    return load


def _generated(generator_name: str, **kwargs) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    def load():
        from sklearn import datasets

        return getattr(datasets, generator_name)(random_state=0, **kwargs)

    return load


def _spirals(n_per_class: int = 300, classes: int = 3, noise: float = 0.2):
    """Interleaved Archimedean spirals (the classic non-linearly-separable toy problem)."""

    def load():
        rng = np.random.default_rng(0)
        xs, ys = [], []
        for c in range(classes):
            t = np.linspace(0.0, 1.0, n_per_class)
            angle = t * 4.0 * np.pi / 1.0 + 2.0 * np.pi * c / classes
            r = t * 5.0
            pts = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
            xs.append(pts + rng.normal(scale=noise, size=pts.shape))
            ys.append(np.full(n_per_class, c))
        return np.concatenate(xs), np.concatenate(ys)

    return load


BUILTIN_DATASETS: dict[str, _Builtin] = {
    "digits": _Builtin("8×8 images of handwritten digits (scikit-learn, 1797 samples, 10 classes)", _sklearn("load_digits")),
    "iris": _Builtin("Iris flowers (scikit-learn, 150 samples, 4 features, 3 classes)", _sklearn("load_iris")),
    "wine": _Builtin("Wine cultivars (scikit-learn, 178 samples, 13 features, 3 classes)", _sklearn("load_wine")),
    "breast_cancer": _Builtin(
        "Breast cancer diagnosis (scikit-learn, 569 samples, 30 features, 2 classes)", _sklearn("load_breast_cancer")
    ),
    "diabetes": _Builtin(
        "Diabetes progression (scikit-learn, 442 samples, 10 features, regression)", _sklearn("load_diabetes"),
        task="regression",
    ),
    "moons": _Builtin("Two interleaving half circles (generated, 1000 samples)", _generated("make_moons", n_samples=1000, noise=0.2)),
    "circles": _Builtin(
        "A circle inside a circle (generated, 1000 samples)", _generated("make_circles", n_samples=1000, noise=0.1, factor=0.5)
    ),
    "spirals": _Builtin("Three interleaved spirals (generated, 900 samples)", _spirals()),
    "blobs": _Builtin(
        "Isotropic Gaussian blobs (generated, 1000 samples, 2 features, 4 classes)",
        _generated("make_blobs", n_samples=1000, centers=4, n_features=2, cluster_std=1.5),
    ),
}


@cache
def _load_cached(name: str) -> tuple[np.ndarray, np.ndarray]:
    entry = BUILTIN_DATASETS[name]
    x, y = entry.load()
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.ascontiguousarray(y, dtype=np.int64 if entry.task == "classification" else np.float32)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def load_builtin(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of a built-in dataset (read-only arrays, cached per process)."""
    if name not in BUILTIN_DATASETS:
        raise KeyError(f"unknown built-in dataset {name!r}; known: {sorted(BUILTIN_DATASETS)}")
    return _load_cached(name)


def builtin_info(name: str) -> DatasetInfo:
    x, y = load_builtin(name)
    entry = BUILTIN_DATASETS[name]
    info = DatasetInfo(
        name=name, source="builtin", description=entry.description, n_samples=len(x),
        feature_shape=tuple(x.shape[1:]), task=entry.task,
    )
    if entry.task == "classification":
        classes, counts = np.unique(y, return_counts=True)
        info.n_classes = len(classes)
        info.class_counts = {str(int(c)): int(n) for c, n in zip(classes, counts)}
    return info
