"""A memory cgroup with a limit, for drills where the kernel's OOM killer must strike for real:
root on a machine with the cgroup v1 memory controller (or v2 with it delegated) can make one;
elsewhere :func:`memory_limit` yields None and the drill has a signal stand in for the kernel."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


class MemoryCgroup:
    def __init__(self, path: Path, parent: Path, version: int):
        self.path, self.parent, self.version = path, parent, version

    def add(self, pid: int) -> None:
        """Move ``pid`` in; the processes it starts afterwards are in it too."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def oom_kills(self) -> int:
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        for line in (self.path / name).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def remove(self) -> None:
        for pid in (self.path / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (self.parent / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            self.path.rmdir()


def _own(controller_line: str) -> str:
    return controller_line.split(":", 2)[2].lstrip("/")


def _make(limit_bytes: int) -> MemoryCgroup | None:
    if os.geteuid() != 0:
        return None
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    v1 = [line for line in lines if "memory" in line.split(":", 2)[1].split(",")]
    name = f"descent-drill-{uuid.uuid4().hex[:8]}"
    try:
        if v1:
            parent = ROOT / "memory" / _own(v1[0])
            path = parent / name
            path.mkdir()
            (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
            swap = path / "memory.memsw.limit_in_bytes"
            if swap.exists():
                swap.write_text(str(limit_bytes))  # no swapping instead of dying
            return MemoryCgroup(path, parent, 1)
        (unified,) = [line for line in lines if line.startswith("0::")]
        parent = ROOT / _own(unified)
        if "memory" not in (parent / "cgroup.subtree_control").read_text().split():
            return None
        path = parent / name
        path.mkdir()
        (path / "memory.max").write_text(str(limit_bytes))
        (path / "memory.swap.max").write_text("0")
        return MemoryCgroup(path, parent, 2)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def memory_limit(limit_bytes: int) -> Iterator[MemoryCgroup | None]:
    """A fresh memory cgroup limited to ``limit_bytes`` (None when one cannot be made here)."""
    cgroup = _make(limit_bytes)
    try:
        yield cgroup
    finally:
        if cgroup is not None:
            cgroup.remove()
