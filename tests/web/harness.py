"""Helpers for the browser tests: `descent up` in a child process (with the admin's token and
the one-time sign-in link it prints), Debian's Chromium, signing a page in, waiting for a page
to draw, reading what a chart draws, screenshots under test-artifacts/screenshots/."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
ADMIN = "admin"  # the admin `descent up` creates on a new data folder
ADMIN_PASSWORD = "browser tests' admin password"  # set by the `instance` fixture
PASSWORD_ENV = "DESCENT_TEST_ADMIN_PASSWORD"


def chromium_executable() -> str:
    """Debian's `chromium` (scripts/test-services.sh installs it); missing, the test fails, never skips."""
    return require_executable("chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Up:
    """A running `descent up`: its base URL, the API token it saved for the admin, the one-time
    sign-in link it printed, and the environment the `descent` CLI needs to reach its database."""

    base: str
    data_dir: Path
    token: str
    login_link: str
    env: dict[str, str]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """`descent ARGS` on this instance's database, as its operator would run it."""
        done = subprocess.run([sys.executable, "-m", "descent.cli", *args], cwd=REPO, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"descent {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def set_password(self, password: str, user: str = ADMIN) -> None:
        """`descent user set-password` (ends that user's dashboard sessions: call it first)."""
        self.cli("user", "set-password", user, "--password-env", PASSWORD_ENV, env={PASSWORD_ENV: password})


def _printed(output: str, label: str) -> str | None:
    """The value on `descent up`'s `  <label>  <value>` line (as tests/descent/running.py reads it)."""
    return next((line.split()[1] for line in output.splitlines() if line.strip().startswith(label + " ")), None)


@contextlib.contextmanager
def descent_up(data_dir: Path, *, worker: bool = True, settings: dict[str, str] | None = None) -> Iterator[Up]:
    """`descent up` in a child process on a new data folder; yields it once it says it is up.
    Its environment has no DESCENT_* of the caller's, and its own $XDG_CONFIG_HOME, so the token
    it saves for the CLI never lands in the real home's token file."""
    port = free_port()
    log_path = data_dir / "up.log"
    log = log_path.open("w")
    command = [sys.executable, "-m", "descent.cli", "up", "--port", str(port), "--data-dir", str(data_dir)]
    if not worker:
        command.append("--no-worker")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCENT_")}
    env.update(PYTHONPATH=str(REPO), XDG_CONFIG_HOME=str(data_dir / "config"), **(settings or {}))
    child = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if child.poll() is not None:
                pytest.fail(f"descent up exited with {child.returncode}:\n{log_path.read_text()[-3000:]}")
            # the summary (with the sign-in link) is printed once /health answers
            if "Descent is up" in log_path.read_text():
                assert httpx.get(f"{base}/api/v1/health", timeout=5).status_code == 200
                break
            if time.monotonic() > deadline:
                pytest.fail(f"descent up did not say it is up:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        link = _printed(log_path.read_text(), "login")
        assert link and link.startswith(f"{base}/api/v1/auth/link?code="), log_path.read_text()[-3000:]
        cli_env = {**env, "DESCENT_DATABASE_URL": f"sqlite:///{data_dir / 'descent.db'}", "DESCENT_DATA_DIR": str(data_dir)}
        yield Up(base=base, data_dir=data_dir, token=(data_dir / "admin.token").read_text().strip(), login_link=link,
                 env=cli_env)
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)  # up stops its children in order, then exits
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        log.close()


def sign_in_with_link(tab, up: Up) -> None:
    """Open the one-time link `descent up` printed (it can be used once): the tab's context gets
    the session cookie and lands on the dashboard."""
    tab.goto(up.login_link)
    tab.wait_for_selector("#view[data-rendered='experiments']", timeout=20_000)


def sign_in_with_password(tab, password: str, user: str = ADMIN) -> None:
    """Fill in the #/login form the tab shows and submit it."""
    tab.wait_for_selector("#view[data-rendered='login']")
    tab.fill("#login-form input[name=username]", user)
    tab.fill("#login-form input[name=password]", password)
    tab.click("#login-form button[type=submit]")


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
