"""Finding a worker's training processes (``python -m worker.child``) from outside, to kill,
stop or watch them as the kernel or a hang would: one that has a run is named ``run-<id>``; the
spare waiting for the next run is not."""

from __future__ import annotations

import os
import time
from pathlib import Path

from worker.child import PROCESS_NAME_PREFIX


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _is_training(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"worker.child" in argv


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _children(parent: int) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent_of(int(p)) == parent
            and _is_training(int(p))]


def training_processes(parent: int) -> list[int]:
    """The live training processes ``parent`` started that train a run."""
    return [p for p in _children(parent) if _name(p).startswith(PROCESS_NAME_PREFIX)]


def spare_processes(parent: int) -> list[int]:
    """The training processes ``parent`` started ahead, waiting for a run."""
    return [p for p in _children(parent) if not _name(p).startswith(PROCESS_NAME_PREFIX)]


def wait_for_training_process(parent: int, timeout_s: float = 120, exclude: tuple[int, ...] = ()) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [p for p in training_processes(parent) if p not in exclude]
        if found:
            return found[0]
        time.sleep(0.02)
    raise AssertionError(f"process {parent} started no training process within {timeout_s} s")
