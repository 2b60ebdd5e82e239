"""``descent up`` killed outright (SIGKILL, the OOM killer) takes its children with it: the
kernel sends each the parent-death signal, so no api keeps the port and no worker keeps taking
runs from the data folder after ``up`` is gone."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.descent.running import Up, free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    state = next(line.split()[1] for line in status.splitlines() if line.startswith("State:"))
    return state not in ("Z", "X")


def test_killing_up_stops_the_api_and_both_workers(tmp_path):
    up = Up(tmp_path, free_port())
    children: list[int] = []
    try:
        up.wait_ready()
        children = _children(up.process.pid)
        commands = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in children}
        assert sum(b"api" in argv for argv in commands.values()) == 1
        assert sum(b"worker" in argv for argv in commands.values()) == 2  # training and lab
        os.kill(up.process.pid, signal.SIGKILL)
        up.process.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(pid) for pid in children):
            time.sleep(0.2)
        left = [b" ".join(commands[pid]).decode() for pid in children if _alive(pid)]
        assert not left, f"still running after descent up was killed: {left}"
    finally:
        for pid in children:  # none outlives the test, whatever it found
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        up.kill()
