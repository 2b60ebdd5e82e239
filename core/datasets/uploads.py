"""Parse and validate an uploaded dataset: a ``.csv`` with a named label column, or a ``.npz``
with arrays ``x`` (N, ...) and ``y`` (N,).  Every rejection is an ``UploadError`` whose message
names the problem (the api answers it with 422)."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass

import numpy as np

# a float label column with at most this many distinct integer values is read as classes
MAX_INFERRED_CLASSES = 100


class UploadError(ValueError):
    def __init__(self, message: str, field: str = "file"):
        super().__init__(message)
        self.field = field


class UploadTooLarge(UploadError):
    """The data would exceed the size limit once decompressed (the api answers 413)."""


@dataclass
class ParsedDataset:
    x: np.ndarray  # float32 (N, ...)
    y: np.ndarray  # int64 class codes or float32 targets
    task: str
    classes: list[str] | None  # label of each class code

    @property
    def class_counts(self) -> dict[str, int] | None:
        if self.classes is None:
            return None
        counts = np.bincount(self.y, minlength=len(self.classes))
        return {label: int(n) for label, n in zip(self.classes, counts)}


def _labels(raw: np.ndarray, task: str | None) -> tuple[np.ndarray, str, list[str] | None]:
    numeric = raw.dtype.kind in "biuf"
    if task is None:
        if not numeric or raw.dtype.kind in "biu":
            task = "classification"
        else:
            integral = bool(np.all(np.isfinite(raw))) and bool(np.all(raw == np.round(raw)))
            task = "classification" if integral and len(np.unique(raw)) <= MAX_INFERRED_CLASSES else "regression"
    if task == "regression":
        if not numeric:
            raise UploadError("regression needs numeric labels", "target")
        y = raw.astype(np.float32)
        if not np.all(np.isfinite(y)):
            raise UploadError("labels contain NaN or infinite values", "target")
        return y, task, None
    if numeric and raw.dtype.kind == "f" and not np.all(np.isfinite(raw)):
        raise UploadError("labels contain NaN or infinite values", "target")
    values, codes = np.unique(raw, return_inverse=True)
    if len(values) < 2:
        raise UploadError(f"only one class ({values[0]!s}) in the labels: nothing to classify", "target")
    labels = [str(v.item() if hasattr(v, "item") else v) for v in values]
    if numeric and raw.dtype.kind == "f":
        labels = [str(int(v)) if float(v).is_integer() else str(v) for v in values]
    return codes.astype(np.int64), task, labels


def _check_features(x: np.ndarray) -> np.ndarray:
    if x.shape[0] == 0:
        raise UploadError("the dataset has no rows")
    if x.ndim < 2 or x.size == 0:
        raise UploadError("x must have shape (N, features...) with at least one feature")
    if x.dtype.kind not in "biuf":
        raise UploadError(f"features must be numbers, got dtype {x.dtype}")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0]
        raise UploadError(f"features contain NaN or infinite values (first at row {bad[0]}, feature {bad[1]})")
    return x


def parse_csv(data: bytes, target: str | None, task: str | None = None) -> ParsedDataset:
    if not target:
        raise UploadError("a csv upload needs the form field 'target' naming the label column", "target")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadError(f"the csv is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text))
    try:
        rows = [row for row in reader if row and any(cell.strip() for cell in row)]
    except csv.Error as exc:  # a field past csv.field_size_limit(), a stray quote in strict mode...
        raise UploadError(f"the csv cannot be read at line {reader.line_num}: {exc}") from None
    if not rows:
        raise UploadError("the csv is empty")
    header = [h.strip() for h in rows[0]]
    if target not in header:
        raise UploadError(f"label column {target!r} is not in the header {header}", "target")
    body = rows[1:]
    if not body:
        raise UploadError("the csv has a header but no rows")
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise UploadError(f"line {number} has {len(row)} fields; the header has {len(header)} (ragged rows)")
    label_at = header.index(target)
    feature_at = [i for i in range(len(header)) if i != label_at]
    if not feature_at:
        raise UploadError("the csv has no feature columns besides the label")
    try:
        x = np.array([[float(row[i]) for i in feature_at] for row in body], dtype=np.float64)
    except ValueError as exc:
        raise UploadError(f"features must be numbers: {exc}") from None
    raw_labels = [row[label_at].strip() for row in body]
    try:
        labels = np.array([float(v) for v in raw_labels])
    except ValueError:
        labels = np.array(raw_labels)
    y, task, classes = _labels(labels, task)
    return ParsedDataset(_check_features(x), y, task, classes)


def _npz_array_bytes(data: bytes) -> int:
    """The size of the npz's x and y once decompressed, read from the zip directory (nothing
    is decompressed); 0 for a file that is not a zip (``np.load`` then says what it is)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(i.file_size for i in archive.infolist() if i.filename in ("x.npy", "y.npy"))
    except zipfile.BadZipFile:
        return 0


def parse_npz(data: bytes, task: str | None = None, max_bytes: int | None = None) -> ParsedDataset:
    """``max_bytes`` bounds the arrays decompressed: a small compressed file can hold huge arrays."""
    if max_bytes is not None and (size := _npz_array_bytes(data)) > max_bytes:
        raise UploadTooLarge(f"the npz's arrays take {size} bytes decompressed, more than the {max_bytes} allowed")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            missing = [k for k in ("x", "y") if k not in archive.files]
            if missing:
                raise UploadError(f"the npz lacks array(s) {missing}; it has {archive.files}")
            x, y = archive["x"], archive["y"]
    except UploadError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UploadError(f"not a readable .npz of numeric arrays: {exc}") from None
    if y.ndim != 1:
        raise UploadError(f"y must have shape (N,), got {list(y.shape)}")
    if x.ndim == 0 or x.shape[0] != y.shape[0]:
        raise UploadError(f"x has {x.shape[0] if x.ndim else 0} rows but y has {y.shape[0]}")
    x = _check_features(x)
    labels, task, classes = _labels(y, task)
    return ParsedDataset(x, labels, task, classes)


def parse_upload(filename: str, data: bytes, target: str | None = None, task: str | None = None,
                 max_bytes: int | None = None) -> ParsedDataset:
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if not data:
        raise UploadError("the uploaded file is empty")
    if suffix == "csv":
        return parse_csv(data, target, task)
    if suffix == "npz":
        return parse_npz(data, task, max_bytes)
    raise UploadError(f"unsupported file type {filename!r}: upload a .csv or a .npz")
