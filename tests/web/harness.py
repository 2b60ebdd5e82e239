"""Helpers for the browser tests: `descent up` in a child process, Debian's Chromium, waiting
for a page to draw, reading what a chart draws, screenshots under test-artifacts/screenshots/."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.services import require_executable

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync",
]
START_TIMEOUT_S = 120.0
VIEWPORT = {"width": 1300, "height": 900}
# Tiny runs keep the suite fast on 2 shared cores: iris has 105 training rows, so 4 steps an epoch.
TINY_TRAINING = {"epochs": 4, "batch_size": 32}


def chromium_executable() -> str:
    """Debian's `chromium` (scripts/test-services.sh installs it); missing, the test fails, never skips."""
    return require_executable("chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def descent_up(data_dir: Path, *, worker: bool = True) -> Iterator[str]:
    """`descent up` in a child process; yields the dashboard's base URL once /health answers."""
    port = free_port()
    log = (data_dir / "up.log").open("w")
    command = [sys.executable, "-m", "descent.cli", "up", "--port", str(port), "--data-dir", str(data_dir)]
    if not worker:
        command.append("--no-worker")
    child = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if child.poll() is not None:
                pytest.fail(f"descent up exited with {child.returncode}:\n{(data_dir / 'up.log').read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"descent up did not answer /health:\n{(data_dir / 'up.log').read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)  # up stops its children in order, then exits
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        log.close()


def submit(api: httpx.Client, spec: dict) -> dict:
    response = api.post("/experiments", json=spec)
    assert response.status_code == 201, response.text
    return response.json()


def shoot(tab, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    path = SCREENSHOTS / f"{safe}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path


def open_view(tab, base: str, route: str, page_name: str, timeout_ms: int = 20_000) -> None:
    """Navigate to a hash route and wait until that page's data is drawn."""
    if tab.url.startswith(base):
        tab.evaluate("r => { location.hash = r; }", route)
    else:
        tab.goto(f"{base}/{route}")
    tab.wait_for_selector(f"#view[data-rendered='{page_name}']", timeout=timeout_ms)


def wait_finished(api: httpx.Client, experiment_id: int, timeout_s: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        experiment = api.get(f"/experiments/{experiment_id}").json()
        if experiment["status"] in ("succeeded", "failed", "cancelled"):
            return experiment
        assert time.monotonic() < deadline, f"experiment {experiment_id} still {experiment['status']}"
        time.sleep(0.3)


def chart_data(tab, selector: str) -> dict:
    """What a chart draws: its series labels and (x, y) lists, read from the uPlot instance."""
    return tab.eval_on_selector(selector, """el => {
        const u = el.__plot;
        return {labels: u.series.slice(1).map(s => s.label),
                xs: Array.from(u.data[0]), ys: u.data.slice(1).map(a => Array.from(a)),
                distr: u.scales.y.distr, xLabel: u.axes[0].label, title: el.querySelector('.u-title')?.textContent};
    }""")
