"""Checkpoints: everything a run needs to continue exactly where it stopped (model, optimizer,
scheduler, gradient scaler, step, epoch, every random-number generator and the batch order),
written atomically so that a worker killed mid-write leaves the previous checkpoint intact.

Checkpoints live in a folder other processes can write, so they are read with
``torch.load(weights_only=True)``: a file can hold tensors, containers and plain python values,
never an object whose unpickling would run code.  :func:`save` refuses any other value (naming
where it sits in the state) so that what the worker writes is always something it can read back;
the python and numpy generator states are stored as plain lists and tensors for that reason.

A write that fails (a full or read-only disk) is tried once more; if that fails too it raises
:class:`StorageError`, which names the file and the OS error (``no space left on device
(ENOSPC)``) instead of the C++ text torch wraps it in; no temporary file is left either way."""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import random
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

# 2: loaded weights-only (format 1 pickled numpy and python generator states as they are)
FORMAT = 2

# what torch's weights-only unpickler rebuilds (torch/_weights_only_unpickler.py); exact types, since
# numpy's float64 passes for a float and would be pickled as a numpy object
_SCALARS = (int, float, bool, str, bytes, bytearray, complex, type(None), torch.dtype, torch.device)
_TENSORS = (torch.Tensor, torch.nn.Parameter)
_MAPPINGS = (dict, OrderedDict, Counter)  # MultiStepLR keeps its milestones in a Counter
_SEQUENCES = (list, tuple, set, torch.Size)

# a failed write is tried once more after this pause: a transient error (a network disk's hiccup,
# space freed meanwhile by a cleanup) passes, and a full disk costs the run only this much per epoch
RETRY_DELAY_S = 0.2

# what an OS error that stops a write means to whoever runs the service, and what to do about it;
# ``{folder}`` is where the file lives, as the caller names it (a setting, a path)
CAUSES: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on device", "free space in {folder}"),
    errno.EDQUOT: ("disk quota exceeded", "free space in {folder} or raise the quota of the worker's user"),
    errno.EACCES: ("permission denied", "let the worker's user write to {folder}"),
    errno.EPERM: ("operation not permitted", "let the worker's user write to {folder}"),
    errno.EROFS: ("read-only file system", "mount {folder} read-write"),
}


def describe(code: int | None) -> str:
    """What the OS error ``code`` means, and its name: ``no space left on device (ENOSPC)``."""
    if code is None:
        return "an error the operating system did not name"
    what = CAUSES[code][0] if code in CAUSES else os.strerror(code).lower()
    return f"{what} ({errno.errorcode.get(code, f'errno {code}')})"


def remedy(code: int | None, folder: str) -> str:
    """What to do so that a write in ``folder`` stopped by ``code`` succeeds next time."""
    if code in CAUSES:
        return CAUSES[code][1].format(folder=folder)
    return f"check that {folder} is writable and its disk healthy"


class StorageError(Exception):
    """A file could not be written: ``path``, the OS error ``code`` that stopped it (None when no
    cause could be found) and ``detail``, the text of what was raised."""

    def __init__(self, path: Path, code: int | None, detail: str) -> None:
        self.path, self.code, self.detail = Path(path), code, detail
        super().__init__(f"could not write {self.path}: {self.reason}")

    @property
    def reason(self) -> str:
        if self.code is None:
            return f"{describe(None)} ({self.detail[:300]})"
        return describe(self.code)


def error_code(exc: BaseException, folder: Path) -> int | None:
    """The OS error behind ``exc``: the first ``errno`` along its chain of causes (torch raises a
    ``RuntimeError`` whose context is the ``OSError`` of the file it wrote to), else what
    ``folder`` shows (read-only, full, not writable), else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno:
            return current.errno
        current = current.__cause__ or current.__context__
    return folder_error_code(folder)


def folder_error_code(folder: Path) -> int | None:
    """Why a write in ``folder`` (or, while it does not exist, the folder it would be made in)
    would fail, read from the folder itself; None when nothing there says it would."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        stats = os.statvfs(folder)
    except OSError as exc:
        return exc.errno
    if stats.f_flag & os.ST_RDONLY:
        return errno.EROFS
    if stats.f_bavail == 0:
        return errno.ENOSPC
    if not os.access(folder, os.W_OK):
        return errno.EACCES
    return None


def rng_states() -> dict[str, Any]:
    """The state of every global generator, in types a weights-only load accepts."""
    version, internal, gauss_next = random.getstate()
    algorithm, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "algorithm": str(algorithm),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),  # uint32 words, held exactly by int64
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {"version": int(version), "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    numpy = states["numpy"]
    np.random.set_state((
        numpy["algorithm"], numpy["keys"].numpy().astype(np.uint32),
        numpy["pos"], numpy["has_gauss"], numpy["cached_gaussian"],
    ))
    python = states["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss_next"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_loadable(value: Any, where: str = "state") -> None:
    """Raise ``TypeError`` naming the first value in ``value`` a weights-only load would refuse
    (anything but tensors, dicts, lists, tuples, sets and plain scalars: numpy arrays and numpy
    scalars, which pass for floats, included)."""
    kind = type(value)
    if kind in _TENSORS or kind in _SCALARS:
        return
    if kind in _MAPPINGS:
        for key, item in value.items():
            check_loadable(key, f"{where} key {key!r}")
            check_loadable(item, f"{where}[{key!r}]")
        return
    if kind in _SEQUENCES:
        for i, item in enumerate(value):
            check_loadable(item, f"{where}[{i}]")
        return
    raise TypeError(
        f"checkpoint: {where} is a {kind.__module__}.{kind.__qualname__}, which a weights-only load "
        "refuses; store it as tensors and plain python values"
    )


def save(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` (see :func:`write_atomically`); raises :class:`StorageError`
    when the disk refuses it twice."""
    state = {"format": FORMAT, **state}
    check_loadable(state)
    write_atomically(path, state)


def write_atomically(path: Path, value: Any, saver: Callable[[Any, Any], None] = torch.save) -> None:
    """``saver(value, file)`` (``torch.save``) ``value`` to ``path`` through a temporary file, flushed to the disk, and an
    atomic rename, so that ``path`` holds either the previous file or the whole new one.  A failed
    write is tried once more after :data:`RETRY_DELAY_S`; when that fails too, raises
    :class:`StorageError`.  The temporary file never outlives the call."""
    path = Path(path)
    for retry in (False, True):
        try:
            _write_once(path, value, saver)
            return
        except (OSError, RuntimeError) as exc:  # torch reports a failed write as a RuntimeError
            if retry:
                raise StorageError(path, error_code(exc, path.parent), f"{type(exc).__name__}: {exc}") from exc
        time.sleep(RETRY_DELAY_S)


def _write_once(path: Path, value: Any, saver: Callable[[Any, Any], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # a file object of our own rather than a path: torch then writes through python, and an
        # OSError carrying the errno stays in the chain of what it raises
        with open(tmp, "wb") as file:
            saver(value, file)
            file.flush()
            os.fsync(file.fileno())  # a disk that accepted the data lazily says now that it has no room
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint :func:`save` wrote, weights-only: a file holding anything else (one
    written by an older worker, or crafted to run code when unpickled) is refused, nothing in it run."""
    path = Path(path)
    restart = "delete it and run the experiment again to restart it from scratch"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch names the refused global ("... GLOBAL posix.system ..."), then advises allow-listing it: not here
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"a reference to {found.group(1)}" if found else "objects other than tensors and plain values"
        raise ValueError(
            f"checkpoint {path} cannot be loaded safely: it holds {what}, which a weights-only load refuses; "
            f"it was written by an older worker (before checkpoint format {FORMAT}) or by something else; {restart}"
        ) from None
    version = state.get("format") if isinstance(state, dict) else None
    if version != FORMAT:
        raise ValueError(f"checkpoint {path} has format {version!r}, expected {FORMAT}; {restart}")
    return state
