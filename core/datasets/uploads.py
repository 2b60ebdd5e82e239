"""Parse and validate an uploaded dataset: a ``.csv`` with a named label column, or a ``.npz``
with arrays ``x`` (N, ...) and ``y`` (N,).  Every rejection is an ``UploadError`` whose message
names the problem (the api answers it with 422)."""

from __future__ import annotations

import array
import codecs
import csv
import io
import math
import operator
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

# a float label column with at most this many distinct integer values is read as classes
MAX_INFERRED_CLASSES = 100


class UploadError(ValueError):
    def __init__(self, message: str, field: str = "file"):
        super().__init__(message)
        self.field = field

    def __reduce__(self):  # crosses a process boundary whole (the api parses in a child process)
        return type(self), (str(self), self.field)


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
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0]
        raise UploadError(f"features contain NaN or infinite values (first at row {bad[0]}, feature {bad[1]})")
    return x


def _utf8_problem(data: bytes) -> str | None:
    """Why ``data`` is not UTF-8 text and at which byte of the file, or None; decoded a chunk at a
    time, so no copy of the whole text is made."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    step = 1 << 20
    for at in range(3 if data.startswith(codecs.BOM_UTF8) else 0, len(data), step):
        pending = len(decoder.getstate()[0])  # bytes of a character split across chunks
        try:
            decoder.decode(view[at:at + step], final=at + step >= len(data))
        except UnicodeDecodeError as exc:
            return f"{exc.reason} at byte {at - pending + exc.start}"
    return None


class _NonNumericLabel(Exception):
    """A label that is not a number: the csv is read again keeping labels as strings."""


def _string_labels(codes: np.ndarray, seen: list[str], task: str | None) -> tuple[np.ndarray, str, list[str]]:
    """Classes from labels coded in order of first appearance: renumbered in sorted order."""
    task = "classification" if task is None else task
    if task == "regression":
        raise UploadError("regression needs numeric labels", "target")
    if len(seen) < 2:
        raise UploadError(f"only one class ({seen[0]!s}) in the labels: nothing to classify", "target")
    order = sorted(range(len(seen)), key=seen.__getitem__)
    rank = np.empty(len(seen), dtype=np.int64)
    rank[order] = np.arange(len(seen))
    return rank[codes], task, [seen[i] for i in order]


def _read_csv(data: bytes, target: str, task: str | None, numeric_labels: bool) -> ParsedDataset:
    """One pass over the rows, each appended to a float32 buffer: memory grows with the numbers
    held (4 bytes a feature, 8 a numeric label, 4 a class), never with Python objects per cell."""
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline=""))
    rows = (row for row in reader if row and any(cell.strip() for cell in row))
    features = array.array("f")
    labels = array.array("d" if numeric_labels else "i")
    seen: dict[str, int] = {}  # string labels -> code in order of first appearance
    try:
        header = next(rows, None)
        if header is None:
            raise UploadError("the csv is empty")
        header = [h.strip() for h in header]
        if target not in header:
            raise UploadError(f"label column {target!r} is not in the header {header}", "target")
        label_at = header.index(target)
        feature_at = [i for i in range(len(header)) if i != label_at]
        pick = operator.itemgetter(*feature_at) if len(feature_at) > 1 else lambda row: (row[feature_at[0]],)
        n = 0
        for number, row in enumerate(rows, start=2):
            if len(row) != len(header):
                raise UploadError(f"line {number} has {len(row)} fields; the header has {len(header)} (ragged rows)")
            n += 1
            if feature_at:
                try:
                    features.extend(map(float, pick(row)))
                except ValueError as exc:
                    raise UploadError(f"features must be numbers: {exc}") from None
            label = row[label_at].strip()
            if numeric_labels:
                try:
                    labels.append(float(label))
                except ValueError:
                    raise _NonNumericLabel from None
            else:
                labels.append(seen.setdefault(label, len(seen)))
    except csv.Error as exc:  # a field past csv.field_size_limit(), a stray quote in strict mode...
        raise UploadError(f"the csv cannot be read at line {reader.line_num}: {exc}") from None
    if not n:
        raise UploadError("the csv has a header but no rows")
    if not feature_at:
        raise UploadError("the csv has no feature columns besides the label")
    x = np.frombuffer(features, dtype=np.float32).reshape(n, len(feature_at))
    if numeric_labels:
        y, task, classes = _labels(np.frombuffer(labels, dtype=np.float64), task)
    else:
        y, task, classes = _string_labels(np.frombuffer(labels, dtype=np.intc), list(seen), task)
    return ParsedDataset(_check_features(x), y, task, classes)


def parse_csv(data: bytes, target: str | None, task: str | None = None) -> ParsedDataset:
    """Streamed: peak memory is the upload plus its numbers as float32 (and a code per label),
    not a Python object per cell."""
    if not target:
        raise UploadError("a csv upload needs the form field 'target' naming the label column", "target")
    if (problem := _utf8_problem(data)) is not None:
        raise UploadError(f"the csv is not UTF-8 text ({problem})")
    try:
        return _read_csv(data, target, task, numeric_labels=True)
    except _NonNumericLabel:
        return _read_csv(data, target, task, numeric_labels=False)


NPZ_MEMBERS = ("x.npy", "y.npy")
# a member may expand at most this much when decompressed, unless it is smaller than the floor
MAX_COMPRESSION_RATIO = 100
COMPRESSION_RATIO_FLOOR = 1024 * 1024


def _npz_members(archive: zipfile.ZipFile, max_bytes: int | None) -> dict[str, zipfile.ZipInfo]:
    """The npz's x.npy and y.npy, refused from the zip directory alone (nothing decompressed):
    any other member, a total size past ``max_bytes``, a member that expands too much."""
    infos = archive.infolist()
    names = [info.filename for info in infos]
    if unexpected := [name for name in names if name not in NPZ_MEMBERS]:
        raise UploadError(f"an npz may hold only the members {list(NPZ_MEMBERS)}; it has {names}: "
                          f"{unexpected} {'is' if len(unexpected) == 1 else 'are'} not allowed")
    if len(set(names)) != len(names):
        raise UploadError(f"the npz holds a member twice: {names}")
    if missing := [name.removesuffix(".npy") for name in NPZ_MEMBERS if name not in names]:
        raise UploadError(f"the npz lacks array(s) {missing}; it has {[n.removesuffix('.npy') for n in names]}")
    size = sum(info.file_size for info in infos)
    if max_bytes is not None and size > max_bytes:
        raise UploadTooLarge(f"the npz's arrays take {size} bytes decompressed, more than the {max_bytes} allowed")
    for info in infos:
        if info.file_size > COMPRESSION_RATIO_FLOOR and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise UploadError(
                f"{info.filename} expands {info.file_size // max(info.compress_size, 1)}:1 when decompressed "
                f"({info.compress_size} to {info.file_size} bytes), more than the {MAX_COMPRESSION_RATIO}:1 allowed; "
                "save it with np.savez (uncompressed)")
    return {info.filename: info for info in infos}


def _read_npy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int | None) -> np.ndarray:
    """One array, its .npy header checked before the data is read: the bytes its shape and
    dtype declare must fit both the limit and the member's declared size."""
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise UploadError(f"{info.filename} is .npy format version {version[0]}.{version[1]}; 1.0 and 2.0 are read")
        if dtype.hasobject:
            raise UploadError(f"{info.filename} holds Python objects; upload numeric arrays")
        nbytes = math.prod(shape) * dtype.itemsize
        if max_bytes is not None and nbytes > max_bytes:
            raise UploadTooLarge(f"{info.filename} declares shape {shape} of {dtype}: {nbytes} bytes, "
                                 f"more than the {max_bytes} allowed")
        if nbytes > info.file_size - member.tell():
            raise UploadError(f"{info.filename} declares {nbytes} bytes of data but the member holds "
                              f"{info.file_size - member.tell()}")
    with archive.open(info) as member:
        array = np.lib.format.read_array(member, allow_pickle=False)
    if array.shape != shape or array.dtype != dtype or array.nbytes != nbytes:
        raise UploadError(f"{info.filename} holds {list(array.shape)} {array.dtype}, not what its header declares")
    return array


def parse_npz(data: bytes, task: str | None = None, max_bytes: int | None = None) -> ParsedDataset:
    """``max_bytes`` bounds the arrays decompressed: a small compressed file can hold huge arrays.
    Only the members ``x.npy`` and ``y.npy`` are read, each allocated once at its checked size."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = _npz_members(archive, max_bytes)
            x, y = (_read_npy(archive, members[name], max_bytes) for name in NPZ_MEMBERS)
    except UploadError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError) as exc:
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
