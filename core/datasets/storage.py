"""Where uploaded datasets live: parsed once at upload into ``x``/``y`` arrays and stored as
``<sha256 of the upload>.npz`` in ``Settings.upload_dir``; the row keeps the checksum so a
changed or missing file is detected when it is loaded."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np

from core.datasets.builtin import DatasetInfo


class StoredDatasetError(RuntimeError):
    """The stored arrays are missing or do not match their checksum."""


def arrays_digest(x: np.ndarray, y: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in (x, y):
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def save_arrays(folder: Path, name: str, x: np.ndarray, y: np.ndarray) -> Path:
    """Write ``name``.npz atomically (a crash never leaves a half-written file under the name)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.npz"
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_arrays(path: Path, digest: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        raise StoredDatasetError(f"dataset file {path.name} is missing from the data folder")
    with np.load(path, allow_pickle=False) as data:
        x, y = data["x"], data["y"]
    if digest is not None and arrays_digest(x, y) != digest:
        raise StoredDatasetError(f"dataset file {path.name} does not match its checksum")
    return x, y


def info_for(dataset) -> DatasetInfo:
    """``DatasetInfo`` of a stored ``models.Dataset`` row."""
    return DatasetInfo(
        name=dataset.name, source="upload", description=f"uploaded {dataset.filename}",
        n_samples=dataset.n_samples, feature_shape=tuple(dataset.feature_shape), task=dataset.task,
        n_classes=dataset.n_classes, class_counts=dataset.class_counts,
    )
