"""``descent bench race``: how long a race of 8 solvers × 500 steps takes, from the lab worker's
compute alone to a person's click seeing it drawn.

* ``compute``: ``worker.lab.race.run_race`` in this process (warmed up first, as a lab worker
  is), on Rosenbrock from (−1.5, 2): eight first-order solvers (sgd, sgd with momentum, adam,
  adamw, rmsprop, adagrad, nadam, lion), then a mix with the quasi-Newton ones (lbfgs, bfgs
  alongside six first-order).
* ``request → stored``: a real ``descent up`` (api, worker and lab worker as child processes,
  SQLite and kombu's SQLite broker in a temporary folder): ``POST /races`` until ``GET
  /races/{id}`` says done, polled every 10 ms through ``descent.client``.
* ``request → drawn``: the same instance in Chromium (Playwright, when Debian's ``chromium`` is
  installed): opening a shared race link (``#/races?run=…``: the page posts the race, polls it
  every 50 ms and draws the contour, trajectories and loss curves) until the race page has drawn.

Each is the median of ``--repeats`` races, after one untimed race that warms the path up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.table import Table

TITLE = "Optimizer race"
HELP = "a race of 8 solvers x 500 steps: lab worker compute, request to stored result, request to drawn page"
QUICK = {"repeats": 2, "steps": 100}
REPO = Path(__file__).resolve().parents[1]
FIRST_ORDER = [
    {"solver": {"name": "sgd", "base_lr": 0.001}},
    {"label": "momentum", "solver": {"name": "sgd", "base_lr": 0.0005, "momentum": 0.9}},
    {"solver": {"name": "adam", "base_lr": 0.05}},
    {"solver": {"name": "adamw", "base_lr": 0.05, "weight_decay": 0.01}},
    {"solver": {"name": "rmsprop", "base_lr": 0.01}},
    {"solver": {"name": "adagrad", "base_lr": 0.5}},
    {"solver": {"name": "nadam", "base_lr": 0.05}},
    {"solver": {"name": "lion", "base_lr": 0.005}},
]
WITH_QUASI_NEWTON = [*FIRST_ORDER[:6], {"solver": {"name": "lbfgs", "base_lr": 1.0}},
                     {"solver": {"name": "bfgs", "base_lr": 1.0}}]
START_TIMEOUT_S = 180.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repeats", type=int, default=10, help="races timed per row; the median is shown (default 10)")
    p.add_argument("--steps", type=int, default=500, help="steps per racer (default 500)")
    p.add_argument("--no-server", action="store_true", help="time the lab worker's compute only")
    p.add_argument("--no-browser", action="store_true", help="do not time the page in Chromium")


def spec(racers: list[dict], steps: int) -> dict:
    return {"function": "rosenbrock", "start": [-1.5, 2.0], "steps": steps, "racers": racers}


def _seconds(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s"


def measure(args: argparse.Namespace) -> list:
    import torch

    from worker.lab.race import run_race, warm_up

    warm_up()
    compute = Table(f"run_race in process, warmed up, Rosenbrock, {args.steps} steps, CPU, torch {torch.__version__}, "
                    f"{torch.get_num_threads()} threads, median of {args.repeats}",
                    ("racers", "median", "min", "CPU time (median)", "CPU time per optimizer step"))
    for name, racers in (("8 first-order", FIRST_ORDER), ("6 first-order + lbfgs + bfgs", WITH_QUASI_NEWTON)):
        times, cpu = [], []
        for _ in range(args.repeats):
            started, started_cpu = time.perf_counter(), time.process_time()
            run_race({"spec": spec(racers, args.steps)})
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        per_step = statistics.median(cpu) / (len(racers) * args.steps) * 1e6
        compute.add(name, _seconds(times), f"{min(times):.3f} s", _seconds(cpu), f"{per_step:.0f} µs")
    compute.notes.append("CPU time is this process's (user + system): on a loaded machine the wall time also "
                         "holds the time spent waiting for a core")
    tables = [compute]
    if not args.no_server:
        tables.append(_served(args))
    return tables


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _printed(output: str, label: str) -> str | None:
    return next((line.split()[1] for line in output.splitlines() if line.strip().startswith(label + " ")), None)


def _served(args: argparse.Namespace) -> Table:
    from descent.client import Client

    data = Path(tempfile.mkdtemp(prefix="descent-bench-race-"))
    port = _free_port()
    log_path = data / "up.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCENT_")}
    env.update(PYTHONPATH=str(REPO), XDG_CONFIG_HOME=str(data / "config"))
    with log_path.open("w") as log:
        up = subprocess.Popen([sys.executable, "-m", "descent.cli", "up", "--port", str(port), "--data-dir", str(data)],
                              cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    table = Table(f"a race of {len(FIRST_ORDER)} first-order solvers x {args.steps} steps through `descent up` (SQLite, "
                  f"kombu's SQLite broker polled every 0.1 s), median of {args.repeats} after one untimed race",
                  ("path", "median", "min", "max"))
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Descent is up" not in log_path.read_text():
            if up.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"descent up did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        token = (data / "admin.token").read_text().strip()
        body = spec(FIRST_ORDER, args.steps)
        with Client(base, token=token, timeout=60) as client:
            client.create_race(body, timeout=120)  # the lab worker has warmed up once this one is done
            stored = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                race = client.create_race(body, poll_s=0.01, timeout=120)
                stored.append(time.perf_counter() - started)
                assert race["status"] == "done", race
        table.add("request → result stored (POST, poll GET)", _seconds(stored), f"{min(stored):.3f} s",
                  f"{max(stored):.3f} s")
        if not args.no_browser:
            drawn = _drawn(base, _printed(log_path.read_text(), "login"), body, args.repeats)
            if drawn is None:
                table.notes.append("request → drawn: not measured (no chromium or playwright here)")
            else:
                table.add("request → drawn (Chromium: shared link to drawn page)", _seconds(drawn),
                          f"{min(drawn):.3f} s", f"{max(drawn):.3f} s")
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
        shutil.rmtree(data, ignore_errors=True)
    return table


def _drawn(base: str, login_link: str, body: dict, repeats: int) -> list[float] | None:
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if chromium is None:
        return None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
            page.goto(login_link)
            page.wait_for_selector("#view[data-rendered='experiments']", timeout=30_000)
            encoded = page.evaluate("async (spec) => (await import('./races.js')).encodeSpec(spec)", body)
            times = []
            for i in range(repeats + 1):
                before = page.evaluate("() => location.hash")
                page.evaluate("e => { window.__raceAsked = performance.now(); location.hash = '#/races?run=' + e; }",
                              encoded)
                page.wait_for_function(
                    """prev => location.hash.startsWith('#/races/') && location.hash !== prev
                       && document.querySelector("#view[data-rendered='race'] #race-canvas[data-step]")""",
                    arg=before, timeout=60_000)
                if i:  # the first warms the page's modules and the lab worker's path up
                    times.append((page.evaluate("() => performance.now()") - page.evaluate("() => window.__raceAsked"))
                                 / 1000)
            return times
        finally:
            browser.close()
