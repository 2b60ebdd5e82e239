"""Checkpoints: everything a run needs to continue exactly where it stopped (model, optimizer,
scheduler, gradient scaler, step, epoch, every random-number generator and the batch order),
written atomically so that a worker killed mid-write leaves the previous checkpoint intact."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = 1


def rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"format": FORMAT, **state}, tmp)
    os.replace(tmp, path)


def load(path: Path) -> dict[str, Any]:
    # our own files, but they hold numpy and python RNG states, which the weights-only loader refuses
    state = torch.load(Path(path), map_location="cpu", weights_only=False)
    if state.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path} has format {state.get('format')!r}, expected {FORMAT}")
    return state
