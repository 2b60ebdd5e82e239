"""Checkpoints: everything a run needs to continue exactly where it stopped (model, optimizer,
scheduler, gradient scaler, step, epoch, every random-number generator and the batch order),
written atomically so that a worker killed mid-write leaves the previous checkpoint intact.

Checkpoints live in a folder other processes can write, so they are read with
``torch.load(weights_only=True)``: a file can hold tensors, containers and plain python values,
never an object whose unpickling would run code.  :func:`save` refuses any other value (naming
where it sits in the state) so that what the worker writes is always something it can read back;
the python and numpy generator states are stored as plain lists and tensors for that reason."""

from __future__ import annotations

import os
import pickle
import random
import re
from collections import Counter, OrderedDict
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
    """Write ``state`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    state = {"format": FORMAT, **state}
    check_loadable(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


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
