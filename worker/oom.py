"""How many processes the kernel's OOM killer has killed in this process's memory cgroup: the
evidence that tells "killed for memory" from any other SIGKILL.  cgroup v2 counts them in
``memory.events`` (``oom_kill N``), cgroup v1 in ``memory.oom_control``; None where neither is
readable (no memory controller, another operating system)."""

from __future__ import annotations

from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _counter(path: Path) -> int | None:
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        return None
    return None


def counter_files(proc_cgroup: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """The OOM-kill counter files for the cgroups ``/proc/self/cgroup``'s text names, v1 first."""
    files = []
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        relative = path.lstrip("/")
        if "memory" in controllers.split(","):
            files.append(root / "memory" / relative / "memory.oom_control")
        elif controllers == "":
            files += [root / relative / "memory.events", root / "unified" / relative / "memory.events"]
    return files


def oom_kills() -> int | None:
    """The OOM killer's count for this process's memory cgroup (it includes the training process
    the worker starts), or None when no counter is readable."""
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return None
    for path in counter_files(text):
        count = _counter(path)
        if count is not None:
            return count
    return None
