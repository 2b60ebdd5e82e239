"""``descent bench streams``: whether many open event streams and a large upload leave the api
answering.  A real ``descent api`` (a subprocess, default settings but for the limits named
below) on a fresh SQLite file (``--databases``: and/or a scratch PostgreSQL database) serves
one running experiment whose metrics grow every half second, as a worker's would.  A plain
``GET /api/v1/experiments/{id}`` is timed every 100 ms through three phases:

1. idle: nothing else open (the baseline of the ratios);
2. streams: ``--streams`` event streams of that experiment open (from another process, 20 a
   user, the default per-user cap; ``DESCENT_MAX_STREAMS`` set to ``--streams``);
3. upload: the same, while a ``--upload-mib`` MiB CSV is uploaded (``POST /api/v1/datasets``).

The api's peak resident memory (``VmHWM``) is read after each phase.  ``--before PATH`` runs
the same against the api of another checkout (a ``git worktree`` of an earlier commit), for a
before-and-after table in one run; its database is migrated, and its users and experiment
made, by that checkout's own code."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from bench import ADMIN_URL
from bench.engine import _free_port, _process, _wait
from bench.table import Table, ratio

ROOT = Path(__file__).resolve().parents[1]
TITLE = "Streams under load"
HELP = "plain GET latency and api memory with many event streams open and a large upload"
QUICK = {"streams": 40, "upload_mib": 10, "seconds": 3.0}
COLUMNS = ("api", "phase", "GET p50", "GET p99", "GET max", "p99 / idle p99", "GETs failed", "api RSS peak",
           "streams")
STREAMS_PER_USER = 20
PROBE_EVERY_S = 0.1
DATABASES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
GOAL = "goal: GET p99 < 200 ms and api RSS < 1 GB with 300 streams and a 200 MiB upload"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


# -- the world: users, a running experiment and a writer adding its points, made by the code of
# -- the checkout being served (a later model may have columns an earlier schema lacks) --

WORLD = """
import json, sys, time
from core.auth import hash_password
from store.db import make_engine, make_sessionmaker, session_scope
from store.models import DEFAULT_PROJECT, Split, User, utcnow
from store.repositories import experiments, metrics, projects, tokens

mode, url = sys.argv[1], sys.argv[2]
engine = make_engine(url)
factory = make_sessionmaker(engine)
if mode == "setup":
    secrets, password = [], hash_password("bench-password")
    with session_scope(factory) as s:
        for i in range(int(sys.argv[3])):
            user = User(username=f"bench{i}", password_hash=password, is_admin=True, disabled=False,
                        created_at=utcnow())
            s.add(user)
            s.flush()
            secrets.append(tokens.issue(s, name="bench", user=user).secret)
        split = Split(project_id=projects.by_name(s, DEFAULT_PROJECT).id, builtin="iris", strategy="random",
                      fractions={"train": 1.0}, seed=0, train_indices=list(range(150)), val_indices=[],
                      test_indices=[], summary={})
        s.add(split)
        s.flush()
        experiment = experiments.create(s, name="streamed", spec={}, solver="sgd", tags=[], split_id=split.id,
                                        queue="cpu")
        experiment.status = "running"
        s.flush()
        print(json.dumps({"experiment_id": experiment.id, "tokens": secrets}))
else:  # write: ten points of two series every half second until sys.stdin closes
    import threading
    eid, step, writes, failed = int(sys.argv[3]), 0, 0, {}
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    while not done.wait(0.5):
        writes += 1
        try:
            with session_scope(factory) as s:
                metrics.add_points(s, eid, [{"name": name, "step": step + i, "epoch": 0, "value": 1.0 / (step + i + 1),
                                             "wall_time": time.time()}
                                            for name in ("train/loss", "val/loss") for i in range(10)])
            step += 10
        except Exception as exc:  # SQLite's lock held past its busy timeout: counted, the next one tried
            reason = str(getattr(exc, "orig", exc)).splitlines()[0][:60]
            failed[reason] = failed.get(reason, 0) + 1
    print(json.dumps({"writes": writes, "failed": failed}))
engine.dispose()
"""


def _world(root: Path, env: dict, url: str, users: int) -> tuple[int, list[str]]:
    done = subprocess.run([sys.executable, "-c", WORLD, "setup", url, str(users)], cwd=root, env=env, check=True,
                          capture_output=True, text=True)
    world = json.loads(done.stdout)
    return world["experiment_id"], world["tokens"]


def _writer(stack: ExitStack, root: Path, env: dict, url: str, experiment_id: int) -> subprocess.Popen:
    """The writer; close its stdin to stop it and read what it did from its stdout."""
    return _process(stack, [sys.executable, "-c", WORLD, "write", url, str(experiment_id)], cwd=root, env=env,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


# -- the streams, held open by another process so their reading costs the prober nothing --


def hold_streams(base: str, experiment_id: int, tokens: list[str], n: int, opened, stop) -> None:
    """Open ``n`` streams, put ``{status: count}`` on ``opened``, read them until ``stop`` is set,
    then put how many ended early (closed by the server or failed) and the events read."""
    asyncio.run(_hold(base, experiment_id, tokens, n, opened, stop))


async def _hold(base: str, experiment_id: int, tokens: list[str], n: int, opened, stop) -> None:
    import httpx

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(120, read=None), limits=limits) as client:
        path = f"/api/v1/experiments/{experiment_id}/stream"

        async def one(i: int):
            try:
                request = client.build_request("GET", path,
                                               headers={"Authorization": f"Bearer {tokens[i // STREAMS_PER_USER]}"})
                return await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                return exc

        responses = await asyncio.gather(*(one(i) for i in range(n)))
        codes: dict[str, int] = {}
        for r in responses:
            key = str(r.status_code) if isinstance(r, httpx.Response) else type(r).__name__
            codes[key] = codes.get(key, 0) + 1
        opened.put(codes)
        counts = {"events": 0, "ended": 0}

        async def read(response) -> None:
            try:
                async for line in response.aiter_lines():
                    counts["events"] += line.startswith("event:")
            except (httpx.HTTPError, asyncio.CancelledError):
                pass
            counts["ended"] += 1

        readers = [asyncio.create_task(read(r)) for r in responses
                   if isinstance(r, httpx.Response) and r.status_code == 200]
        await asyncio.to_thread(stop.wait)
        ended_early = counts["ended"]
        for task in readers:
            task.cancel()
        for r in responses:
            if isinstance(r, httpx.Response):
                await r.aclose()
        opened.put({"ended early": ended_early, "events": counts["events"]})


# -- the prober --


class Prober(threading.Thread):
    """``GET /experiments/{id}`` every ``PROBE_EVERY_S``; ``take()`` hands over what it timed."""

    def __init__(self, base: str, experiment_id: int, token: str):
        super().__init__(daemon=True)
        import httpx

        self.client = httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"})
        self.path = f"/api/v1/experiments/{experiment_id}"
        self.stop, self.idle = threading.Event(), threading.Event()
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.failed = 0
        self.start()

    def run(self) -> None:
        import httpx

        while not self.stop.is_set():
            self.idle.clear()
            start = time.perf_counter()
            try:
                ok = self.client.get(self.path).status_code == 200
            except httpx.HTTPError:
                ok = False
            elapsed = time.perf_counter() - start
            with self.lock:
                self.latencies.append(elapsed)
                self.failed += not ok
            self.idle.set()
            self.stop.wait(max(0.0, PROBE_EVERY_S - elapsed))
        self.client.close()

    def take(self) -> tuple[list[float], int]:
        """What was timed since the last take, once the GET in flight (sent in this phase, maybe
        stalled by it) has its answer."""
        self.idle.wait(120)
        with self.lock:
            out = (self.latencies, self.failed)
            self.latencies, self.failed = [], 0
        return out


# -- one api, three phases --


def _csv(path: Path, mib: int) -> Path:
    """A CSV of 8 float features and a 3-class label, ``mib`` MiB (a block of rows repeated)."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows = "".join(",".join(f"{v:.6f}" for v in rng.standard_normal(8)) + f",c{i % 3}\n" for i in range(20_000))
    block = rows.encode()
    with open(path, "wb") as f:
        f.write(b"f0,f1,f2,f3,f4,f5,f6,f7,label\n")
        written, target = 0, mib * 1024 * 1024
        while written + len(block) <= target:
            f.write(block)
            written += len(block)
        f.write(block[:block.rfind(b"\n", 0, target - written) + 1])
    return path


def _upload(base: str, token: str, csv: Path, result: dict) -> None:
    import httpx

    start = time.perf_counter()
    try:
        with open(csv, "rb") as f:
            r = httpx.post(f"{base}/api/v1/datasets", headers={"Authorization": f"Bearer {token}"}, timeout=600,
                           files={"file": (csv.name, f, "text/csv")}, data={"name": "bench", "target": "label"})
        result["status"] = r.status_code
    except httpx.HTTPError as exc:
        result["status"] = type(exc).__name__
    result["seconds"] = time.perf_counter() - start


def _database(stack: ExitStack, args: argparse.Namespace, database: str, folder: str) -> str:
    if database == "postgresql":
        from store.scratch import scratch_database

        return stack.enter_context(scratch_database(args.postgres_url, migrate=False, prefix="descent_bench_streams"))
    return f"sqlite:///{folder}/bench.db"


def run_api(args: argparse.Namespace, database: str, root: Path, label: str, csv: Path, table: Table) -> None:
    """The three phases against the api of the checkout at ``root``; a row each in ``table``."""
    import httpx

    with ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="descent-bench-streams-"))
        url = _database(stack, args, database, folder)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DESCENT_")}
        env.update(PYTHONPATH=str(root), PYTHONUNBUFFERED="1", DESCENT_DATABASE_URL=url, DESCENT_DATA_DIR=folder,
                   DESCENT_MAX_STREAMS=str(args.streams), DESCENT_REQUESTS_PER_MINUTE="1000000",
                   DESCENT_MAX_UPLOAD_BYTES=str((args.upload_mib + 1) * 1024 * 1024), DESCENT_REQUEUE_AFTER_S="3600")
        subprocess.run([sys.executable, "-m", "descent.cli", "migrate"], cwd=root, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        experiment_id, tokens = _world(root, env, url, max(1, math.ceil(args.streams / STREAMS_PER_USER)) + 1)
        port = _free_port()
        log = stack.enter_context(open(Path(folder, "api.log"), "ab"))
        api = _process(stack, [sys.executable, "-m", "descent.cli", "api", "--port", str(port), "--log-level",
                               "warning"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        _wait(lambda: httpx.get(f"{base}/api/v1/openapi.json", timeout=2).status_code == 200, 120, "the api")
        writer = _writer(stack, root, env, url, experiment_id)
        prober = Prober(base, experiment_id, tokens[-1])
        stack.callback(prober.join, 70)
        stack.callback(prober.stop.set)

        def row(phase: str, baseline: float | None, streams: str) -> float:
            latencies, failed = prober.take()
            p50, p99 = _percentile(latencies, 0.5), _percentile(latencies, 0.99)
            table.add(label, phase, f"{p50 * 1000:.0f} ms", f"{p99 * 1000:.0f} ms", f"{max(latencies) * 1000:.0f} ms",
                      ratio(None if baseline is None else p99 / baseline), f"{failed} of {len(latencies)}",
                      f"{_peak_rss_mib(api.pid):.0f} MiB", streams)
            return p99

        time.sleep(1.0)
        prober.take()  # the api's first requests (imports, connections) are not the baseline
        time.sleep(args.seconds)
        idle = row("idle", None, "-")
        context = multiprocessing.get_context("spawn")
        opened, stop = context.Queue(), context.Event()
        holder = context.Process(target=hold_streams, args=(base, experiment_id, tokens[:-1], args.streams, opened,
                                                            stop), daemon=True)
        holder.start()
        stack.callback(holder.join, 30)
        stack.callback(stop.set)
        codes = opened.get(timeout=300)
        prober.take()  # the streams' opening is not the steady state
        time.sleep(args.seconds)
        answers = ", ".join(f"{n}×{code}" for code, n in sorted(codes.items()))
        row(f"{args.streams} streams", idle, answers)
        upload: dict = {}
        uploading = threading.Thread(target=_upload, args=(base, tokens[-1], csv, upload))
        uploading.start()
        uploading.join()
        time.sleep(0.5)
        row(f"{args.streams} streams + {args.upload_mib} MiB upload", idle, answers)
        stop.set()
        ended = opened.get(timeout=60)
        written = json.loads(writer.communicate(timeout=60)[0])
        writes = "; ".join(f"{n} of {written['writes']} failed: {reason}" for reason, n in written["failed"].items())
        writes = writes or f"{written['writes']}, none failed"
        table.notes.append(
            f"{label}: the upload answered {upload['status']} in {upload['seconds']:.1f} s; "
            f"{ended['ended early']} of the streams ended early; {ended['events']} events read in all; "
            f"the writer's writes: {writes}.")
        if api.poll() is not None:
            table.notes.append(f"{label}: the api exited with {api.returncode} (log: {folder}/api.log)")


def measure(args: argparse.Namespace) -> list[Table]:
    unknown = set(args.databases) - set(DATABASES)
    if unknown or not args.databases:
        raise ValueError(f"databases: {sorted(unknown) or 'none'}; known: {', '.join(DATABASES)}")
    apis = [(Path(args.before).resolve(), f"before ({_commit(Path(args.before))})")] if args.before else []
    apis.append((ROOT, f"this tree ({_commit(ROOT)})" if args.before else "this tree"))
    tables = []
    with tempfile.TemporaryDirectory(prefix="descent-bench-csv-") as folder:
        csv = _csv(Path(folder, "bench.csv"), args.upload_mib)
        for database in args.databases:
            table = Table(f"descent api on {DATABASES[database]}, default pool (DESCENT_DB_POOL_SIZE 10 + 10 overflow); "
                          f"one running experiment gaining 20 points every 0.5 s; GET every "
                          f"{PROBE_EVERY_S * 1000:.0f} ms for {args.seconds:g} s a phase", COLUMNS)
            for root, label in apis:
                run_api(args, database, root, label, csv, table)
            table.notes.append(GOAL)
            tables.append(table)
    return tables


def _commit(root: Path) -> str:
    done = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--streams", type=int, default=300, help="event streams held open (default 300)")
    p.add_argument("--upload-mib", type=int, default=200, help="size of the uploaded CSV in MiB (default 200)")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds each phase is probed (default 10)")
    p.add_argument("--before", default=None, metavar="PATH",
                   help="also run against the api of this checkout of an earlier commit, first")
    p.add_argument("--databases", type=lambda t: [d.strip() for d in t.split(",") if d.strip()], default=["sqlite"],
                   help="comma-separated, of sqlite (a file in a temporary folder), postgresql (a scratch database); "
                        "a table each (default sqlite)")
    p.add_argument("--postgres-url", default=ADMIN_URL, help="admin url of the server (default: %(default)s)")
