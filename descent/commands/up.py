"""``descent up``: the embedded default on one machine, with no server to install.

An SQLite file, and kombu's SQLAlchemy broker over a second one, in the data folder
(``./descent-data``); the migrations applied, then the api and one worker as two separate
child processes (``descent api`` and ``descent worker``, exactly the production commands,
configured by environment).
It prints the addresses once the api answers ``/health``; Ctrl-C (or SIGTERM) stops both and
exits 0.  If a child dies, it says which one and stops the other."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HEALTH_TIMEOUT_S = 120.0
# An idle worker polling SQLite every 0.1 s costs ~2 % of a core; a training waits ~0.1 s to start.
BROKER_POLL_S = 0.1
STOP_TIMEOUT_S = 20.0


def register(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address the api listens on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="api port (default 8000)")
    parser.add_argument(
        "--data-dir", type=Path, default=Path("descent-data"),
        help="database, broker, uploads and checkpoints live here (default ./descent-data)",
    )
    parser.add_argument(
        "--queue", choices=("cpu", "gpu"), default=None,
        help="queue the worker takes (default: gpu when this machine has a GPU, else cpu)",
    )
    parser.add_argument("--no-worker", action="store_true", help="serve the api only")


def embedded_environment(data_dir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The children's environment: the caller's, with the database and the broker pinned to the
    data folder so a production ``DESCENT_DATABASE_URL`` in the shell cannot leak in."""
    data_dir = data_dir.resolve()
    env = dict(os.environ if base is None else base)
    env.update(
        DESCENT_DATA_DIR=str(data_dir),
        DESCENT_DATABASE_URL=f"sqlite:///{data_dir / 'descent.db'}",
        DESCENT_BROKER_URL=f"sqla+sqlite:///{data_dir / 'broker.db'}",
        PYTHONUNBUFFERED="1",
    )
    env.setdefault("DESCENT_BROKER_POLL_INTERVAL", str(BROKER_POLL_S))
    return env


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _descent(*args: str) -> list[str]:
    return [sys.executable, "-m", "descent.cli", *args]


class _Stop(Exception):
    """Raised by the SIGINT/SIGTERM handler to leave the supervision loop."""


def _raise_stop(signum, _frame):
    raise _Stop(signal.Signals(signum).name)


def run(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if not port_is_free(args.host, args.port):
        print(f"descent up: port {args.port} on {args.host} is taken; pick another with --port", file=sys.stderr)
        return 1
    env = embedded_environment(data_dir)

    # Migrations run in a child as well, so `up` itself never imports the server.
    print(f"descent up: data in {data_dir}", flush=True)
    migrate = subprocess.run(_descent("migrate"), env=env)
    if migrate.returncode != 0:
        print("descent up: `descent migrate` failed (see above); nothing was started", file=sys.stderr)
        return 1

    children: dict[str, subprocess.Popen] = {}
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Own sessions: a Ctrl-C reaches only us, and we stop the children in order.
        children["api"] = subprocess.Popen(
            _descent("api", "--host", args.host, "--port", str(args.port)), env=env, start_new_session=True
        )
        if not args.no_worker:
            queue = ["--queue", args.queue] if args.queue else []
            children["worker"] = subprocess.Popen(_descent("worker", *queue), env=env, start_new_session=True)
        base = f"http://{_url_host(args.host)}:{args.port}"
        if not _wait_healthy(base, children):
            return _fail(children, "the api did not answer /health")
        print(
            f"\nDescent is up.\n  api        {base}/api/v1\n  docs       {base}/api/v1/docs\n  dashboard  {base}/\n"
            f"  data       {data_dir}\nPress Ctrl-C to stop.\n",
            flush=True,
        )
        while True:
            for name, child in children.items():
                code = child.poll()
                if code is not None:
                    return _fail(children, f"the {name} exited with code {code}")
            time.sleep(0.5)
    except _Stop as stop:
        for s in previous:
            signal.signal(s, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        print(f"\ndescent up: {stop} received, stopping", flush=True)
        _stop_all(children)
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _stop_all(children)


def _url_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def _wait_healthy(base: str, children: dict[str, subprocess.Popen]) -> bool:
    import httpx

    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(c.poll() is not None for c in children.values()):
            return False
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _fail(children: dict[str, subprocess.Popen], what: str) -> int:
    dead = [f"{n} (exit code {c.returncode})" for n, c in children.items() if c.poll() is not None]
    print(
        f"\ndescent up: {what}; {'stopped: ' + ', '.join(dead) + '; ' if dead else ''}stopping the rest.\n"
        "  Its output is above.  Fix the cause and run `descent up` again; your data is kept.",
        file=sys.stderr, flush=True,
    )
    _stop_all(children)
    return 1


def _stop_all(children: dict[str, subprocess.Popen]) -> None:
    """SIGTERM every live child (the worker first: it stops taking work), wait, then SIGKILL
    what is left.  A run cut short resumes from its last checkpoint on the next start."""
    live = [c for c in reversed(list(children.values())) if c.poll() is None]
    for child in live:
        child.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child in live:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
