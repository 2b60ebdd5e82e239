"""``descent up``: the embedded default on one machine, with no server to install.

An SQLite file, and kombu's SQLAlchemy broker over a second one, in the data folder
(``./descent-data``); the migrations applied, then the api, one worker and one optimizer-lab worker
as separate child processes (``descent api``, ``descent worker`` and ``descent worker --queue lab``,
exactly the production commands, configured by environment).
Before serving, ``descent user bootstrap-local`` (``descent.commands.bootstrap``) creates the
admin on a new instance and a token the local CLI finds, and makes a one-time sign-in link.
It prints the addresses and the link once the api answers ``/health``; Ctrl-C (or SIGTERM)
stops them all and exits 0, and on Linux the kernel stops them if ``up`` itself is killed.  A worker that exits is started again (a run that killed it resumes
from its checkpoint), unless it keeps exiting; if the api dies, it says so and stops the worker.

It listens on a non-loopback ``--host`` only with the host names clients use
(``--allowed-host``, or ``DESCENT_ALLOWED_HOSTS``)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from descent.commands.hosts import ALLOWED_HOSTS_ENV, allowed_hosts, is_loopback, refusal, split_hosts
from descent.credentials import ADMIN_TOKEN_FILE

HEALTH_TIMEOUT_S = 120.0
# An idle worker polling SQLite every 0.1 s costs ~2 % of a core; a training waits ~0.1 s to start.
BROKER_POLL_S = 0.1
STOP_TIMEOUT_S = 20.0
WILDCARDS = ("0.0.0.0", "")  # every IPv4 address of this machine


def register(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address the api listens on (default 127.0.0.1)")
    parser.add_argument(
        "--allowed-host", action="append", default=[], metavar="NAME",
        help="a host name clients reach the api by (repeatable; also $DESCENT_ALLOWED_HOSTS); "
             "needed to listen on a non-loopback --host",
    )
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


# prctl(2) option: the signal the kernel sends this process when the thread that started it dies
PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int):
    """A ``preexec_fn`` for the children: on Linux, ask the kernel to SIGTERM the child when
    ``descent up`` dies, however it dies (SIGKILL, OOM killer), so no api or worker outlives it
    holding the port and the data folder; a clean stop still goes through :func:`_stop_all`.
    Elsewhere it does nothing."""

    def arm() -> None:
        if not sys.platform.startswith("linux"):
            return
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # up died between fork and prctl: nobody would signal us
            os._exit(1)

    return arm


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    """A child in its own session (a Ctrl-C reaches only ``up``, which stops the children in
    order) that the kernel stops if ``up`` dies without stopping it."""
    return subprocess.Popen(argv, env=env, start_new_session=True, preexec_fn=_die_with_parent(os.getpid()))


class _Stop(Exception):
    """Raised by the SIGINT/SIGTERM handler to leave the supervision loop."""


def _raise_stop(signum, _frame):
    raise _Stop(signal.Signals(signum).name)


def run(args: argparse.Namespace) -> int:
    extra_hosts = [*args.allowed_host, *split_hosts(os.environ.get(ALLOWED_HOSTS_ENV))]
    if not is_loopback(args.host) and not extra_hosts:
        print(refusal("descent up", args.host, "--allowed-host NAME (the names clients use)"), file=sys.stderr)
        return 2
    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if not port_is_free(args.host, args.port):
        print(f"descent up: port {args.port} on {args.host} is taken; pick another with --port", file=sys.stderr)
        return 1
    env = embedded_environment(data_dir)
    # the address itself, when it is one: an IP literal cannot be rebound to another machine
    bound = [args.host] if _is_ip(args.host) and args.host not in WILDCARDS else []
    env[ALLOWED_HOSTS_ENV] = allowed_hosts([*extra_hosts, *bound])

    # Migrations run in a child as well, so `up` itself never imports the server.
    print(f"descent up: data in {data_dir}", flush=True)
    migrate = subprocess.run(_descent("migrate"), env=env)
    if migrate.returncode != 0:
        print("descent up: `descent migrate` failed (see above); nothing was started", file=sys.stderr)
        return 1
    urls = local_urls(args.host, args.port)
    booted = bootstrap(data_dir, urls, env)
    if booted is None:
        print("descent up: the admin and token bootstrap failed (see above); nothing was started", file=sys.stderr)
        return 1

    children: dict[str, subprocess.Popen] = {}
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        children["api"] = _start(_descent("api", "--host", args.host, "--port", str(args.port)), env)
        queue = ["--queue", args.queue] if args.queue else []
        # the optimizer lab's short jobs have a worker of their own, so a race never waits behind a training
        worker_args = {} if args.no_worker else {
            "worker": ("worker", *queue), "lab worker": ("worker", "--queue", "lab"),
        }
        for name, argv in worker_args.items():
            children[name] = _start(_descent(*argv), env)
        base = urls[0]
        if not _wait_healthy(base, children):
            return _fail(children, "the api did not answer /health")
        token_file = data_dir / ADMIN_TOKEN_FILE
        if "worker" in children and token_file.is_file() and not _wait_worker(base, token_file.read_text().strip(),
                                                                               children):
            return _fail(children, "the worker did not report for work")
        link = booted.get("login_link")
        login = f"  login      {link}  (one-time sign-in for the dashboard)\n" if link else ""
        print(
            f"\nDescent is up.\n  api        {base}/api/v1\n  docs       {base}/api/v1/docs\n  dashboard  {base}/\n"
            f"{login}  data       {data_dir}\nPress Ctrl-C to stop.\n",
            flush=True,
        )
        restarts = {name: WorkerRestarts() for name in worker_args}
        while True:
            for name, child in list(children.items()):
                code = child.poll()
                if code is None:
                    continue
                if name not in worker_args or not restarts[name].allow(time.monotonic()):
                    return _fail(children, f"the {name} exited with code {code}")
                print(f"descent up: the {name} exited with code {code} (its output is above); starting a new one. "
                      "A run it was training resumes from its last checkpoint.", file=sys.stderr, flush=True)
                children[name] = _start(_descent(*worker_args[name]), env)
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


class WorkerRestarts:
    """Whether a worker that exited may be started again: yes, unless it has already been
    restarted ``limit`` times within ``window_s`` (then it is crashing, not being stopped by a
    run, and ``up`` stops with its output on screen)."""

    def __init__(self, limit: int = 5, window_s: float = 60.0):
        self.limit, self.window_s = limit, window_s
        self.times: list[float] = []

    def allow(self, now: float) -> bool:
        self.times = [t for t in self.times if now - t < self.window_s]
        if len(self.times) >= self.limit:
            return False
        self.times.append(now)
        return True


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def local_urls(host: str, port: int) -> list[str]:
    """The base urls of the api on this machine, the one ``up`` prints first: a loopback or
    wildcard address is reached as both ``127.0.0.1`` and ``localhost``."""
    if host in (*WILDCARDS, "127.0.0.1", "localhost"):
        first = "localhost" if host == "localhost" else "127.0.0.1"
        return [f"http://{name}:{port}" for name in dict.fromkeys([first, "127.0.0.1", "localhost"])]
    return [f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"]


def bootstrap(data_dir: Path, urls: list[str], env: dict[str, str]) -> dict | None:
    """Run ``descent user bootstrap-local`` (admin, token files, sign-in link) and return its
    answer (``login_link``: the link, or None when there is no admin to sign in as); None when it
    failed.  Its notes reach the terminal on stderr."""
    url_args = [a for url in urls for a in ("--url", url)]
    done = subprocess.run(_descent("user", "bootstrap-local", "--data-dir", str(data_dir), *url_args), env=env,
                          stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        return None
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        answer = None
    if not isinstance(answer, dict):
        print(f"descent up: unexpected answer from the bootstrap: {done.stdout[-500:]!r}", file=sys.stderr)
        return None
    return answer


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


def _wait_worker(base: str, token: str, children: dict[str, subprocess.Popen]) -> bool:
    """Until the worker is alive for the api (``/queue`` counts it), so that "Descent is up" means a
    run submitted now starts now, rather than being told no worker has been seen."""
    import httpx

    from core.queue import QUEUES

    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(c.poll() is not None for c in children.values()):
            return False
        try:
            answer = httpx.get(f"{base}/api/v1/queue", headers={"Authorization": f"Bearer {token}"}, timeout=2.0)
            # a training queue's worker: /queue counts the lab worker too, on `lab`, and it trains nothing
            if answer.status_code == 200 and any(answer.json()["queues"][q]["workers"] for q in QUEUES):
                return True
        except (httpx.HTTPError, ValueError, KeyError):
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
