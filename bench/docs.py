"""``--write``: put a run's tables into docs/benchmarks.md, replacing only that benchmark's block.

A block sits between two comment lines, ``<!-- descent bench NAME: begin -->`` and ``<!--
descent bench NAME: end -->``, so the prose around it (how to read the table, what changed)
stays as written.  A file without the benchmark's block gets a new ``## TITLE`` section at its
end holding one."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

from bench.table import Table, render_all

DOCS = Path("docs/benchmarks.md")


def markers(name: str) -> tuple[str, str]:
    return f"<!-- descent bench {name}: begin -->", f"<!-- descent bench {name}: end -->"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """One line: OS, CPU, cores, load when the run ended, Python."""
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return (f"{platform.system()} {platform.machine()}, {_cpu_model()}, {os.cpu_count()} cores{load}, "
            f"Python {platform.python_version()}")


def block(name: str, command: str, tables: list[Table], today: datetime.date | None = None) -> str:
    """The text between (and including) the benchmark's markers."""
    begin, end = markers(name)
    day = (today or datetime.date.today()).isoformat()
    return "\n".join([begin, f"`{command}`, measured {day} on {machine()}.", "", render_all(tables, True), end])


def write_section(path: Path, name: str, title: str, text: str) -> None:
    """Replace the benchmark's block in ``path`` by ``text`` (a ``block``), or append a section."""
    begin, end = markers(name)
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    start = old.find(begin)
    if start >= 0:
        stop = old.find(end, start)
        if stop < 0:
            raise ValueError(f"{path}: {begin!r} has no {end!r} after it")
        new = old[:start] + text + old[stop + len(end):]
    else:
        new = old.rstrip("\n") + f"\n\n## {title}\n\n{text}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)
