"""``descent bench engine``: the worker.

1. Engine throughput: the engine's training samples/s against a minimal hand-written torch loop
   on the same model, data, batch size and Descent optimizer (``optim.Adam`` at its class
   defaults: on CPU the per-tensor loop).  Three sides run whole trainings in alternation
   (build, the epochs with a validation pass after each, the test pass): the hand loop, the
   engine on that same optimizer path (its overhead), and the engine at its default (the fused
   kernel, ``worker.engine.fused_default``: the speed a user sees); the kernel is built or loaded
   first.  Each side's figure is train samples x epochs over its median run time, by CPU time
   of this thread and by wall clock.  The engine does all it does in production (every step's
   metrics, cancel check, scheduler) but writes to a ``ListSink`` instead of a database.
2. Queue latency: ``POST /experiments`` -> ``running`` with an idle worker, on real PostgreSQL
   and Redis, the api (uvicorn) and a worker as separate processes.  Latency is the
   experiment's ``started_at`` (set by the worker's claim) minus the moment the POST was sent.
   It needs DESCENT_TEST_POSTGRES_URL (an admin URL; a scratch database is made and dropped)
   and starts its own redis-server on a free port.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path

from bench import ADMIN_URL
from bench.identity import user_token
from bench.table import Table

ROOT = Path(__file__).resolve().parents[1]

CONFIGS = {
    # name: (label, architecture, batch size)
    "mlp128": ("mlp 2×128, batch 64", {"name": "mlp", "depth": 2, "width": 128}, 64),
    "mlp512": ("mlp 2×512, batch 256", {"name": "mlp", "depth": 2, "width": 512}, 256),
    "lenet": ("cnn2d (LeNet-5), batch 64", {"name": "cnn2d"}, 64),
}


def digits_split():
    import numpy as np
    from sklearn.model_selection import train_test_split

    from core.datasets import builtin_info, load_builtin
    from core.splits import SplitArrays

    x, y = load_builtin("digits")
    idx = np.arange(len(x))
    train, rest = train_test_split(idx, test_size=0.4, random_state=0, stratify=y)
    val, test = train_test_split(rest, test_size=0.5, random_state=0, stratify=y[rest])
    return SplitArrays(x[train], y[train], x[val], y[val], x[test], y[test], builtin_info("digits"))


def make_spec(split, architecture, batch_size, epochs):
    from core.spec import ExperimentSpec, resolve_spec

    spec = ExperimentSpec.model_validate({
        "name": "bench", "split_id": 1, "architecture": architecture,
        "solver": {"name": "adam", "base_lr": 1e-3}, "training": {"epochs": epochs, "batch_size": batch_size},
    })
    return resolve_spec(spec, split.info, len(split.x_train))


def hand_loop(spec, data, epochs: int) -> None:
    """The minimal loop doing the same work: build, then per epoch permute, forward, loss,
    backward, step over the train part and evaluate the validation part; test at the end."""
    import torch
    import torch.nn.functional as F

    from optim.factory import build_optimizer
    from worker.architectures import build_model

    torch.manual_seed(spec.training.seed)
    model = build_model(spec.architecture.name, spec.architecture_hparams(), data.feature_shape, data.n_outputs)
    model.to(data.device)
    opt = build_optimizer(model.parameters(), "adam", spec.solver_hparams())
    x, y = data.train.x, data.train.y
    n, bs = len(x), spec.training.batch_size
    generator = torch.Generator().manual_seed(1)

    def evaluate(part) -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            out = model(part.x)
            result = F.cross_entropy(out, part.y).item(), (out.argmax(-1) == part.y).float().mean().item()
        model.train()
        return result

    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(n, generator=generator).to(data.device).split(bs):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        evaluate(data.val)
    evaluate(data.test)
    _sync(data.device)


def engine(spec, data, default_path: bool = False) -> None:
    """One engine training; ``default_path``: as if the fused kernel were not built, so the
    optimizer takes the hand loop's path (``foreach=None``)."""
    from worker.engine import fused_default, train
    from worker.sink import ListSink

    ready = fused_default.kernel_ready
    if default_path:
        fused_default.kernel_ready = lambda: False
    try:
        train(spec, data, sink=ListSink())
    finally:
        fused_default.kernel_ready = ready
    _sync(data.device)


def timed(fn, *args) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this thread) of ``fn(*args)``."""
    wall, cpu = time.perf_counter(), time.thread_time()
    fn(*args)
    return time.perf_counter() - wall, time.thread_time() - cpu


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def throughput(device: str, epochs: int, repeats: int, models: list[str]) -> Table:
    """Per config: median samples/s of the hand loop, the engine on the same optimizer path and
    the engine at its default (fused on CPU), by CPU time and by wall time."""
    import torch

    from optim import _fused
    from worker.data import prepare

    fused = device == "cpu" and _fused.warm()  # built once per machine (a minute), else loaded
    split = digits_split()
    data = prepare(split, device)
    samples = len(data.train) * epochs
    default = "fused kernel" if fused else "no fused kernel: " + (_fused.failure() or "not on the CPU")
    out = Table(f"engine vs hand loop on {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
                f"{epochs} epochs, median of {repeats} runs; engine default: {default}", THROUGHPUT_COLUMNS)
    for name in models:
        label, architecture, batch_size = CONFIGS[name]
        spec = make_spec(split, architecture, batch_size, epochs)
        engine(spec, data)  # warm-up: first-touch allocations, lazy imports, CUDA context
        engine(spec, data, default_path=True)
        hand_loop(spec, data, epochs)
        runs: dict[str, list[tuple[float, float]]] = {"hand": [], "same": [], "default": []}
        for _ in range(repeats):  # alternate, so that load changes hit all alike
            runs["hand"].append(timed(hand_loop, spec, data, epochs))
            runs["same"].append(timed(engine, spec, data, True))
            runs["default"].append(timed(engine, spec, data))
        r = {
            (side, clock): samples / statistics.median(run[i] for run in runs[side])
            for side in runs for i, clock in enumerate(("wall", "cpu"))
        }
        cells = [label]
        for clock in ("cpu", "wall"):
            hand = r["hand", clock]
            cells += [f"{hand:,.0f}", f"{r['same', clock]:,.0f}", f"{r['same', clock] / hand:.3f}",
                      f"{r['default', clock]:,.0f}", f"{r['default', clock] / hand:.3f}"]
        out.add(*cells)
    return out


THROUGHPUT_COLUMNS = (
    "model (digits, Adam)",
    "hand loop samples/s (CPU)", "engine, same path (CPU)", "ratio (CPU)", "engine default (CPU)",
    "default ratio (CPU)",
    "hand loop samples/s (wall)", "engine, same path (wall)", "ratio (wall)", "engine default (wall)",
    "default ratio (wall)",
)


# -- latency ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def _finished(client, experiment_id: int) -> bool:
    return client.get(f"/experiments/{experiment_id}").json()["status"] in ("succeeded", "failed")


def _process(stack: ExitStack, args: list[str], **kwargs) -> subprocess.Popen:
    """Start ``args``; ``stack`` terminates it (killing it after 30 s) when it closes."""
    process = subprocess.Popen(args, **kwargs)

    def stop():
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()

    stack.callback(stop)
    return process


def _start_services(stack: ExitStack, url: str) -> str:
    """redis-server, the api and one cpu worker as separate processes; the api's base url once
    both it and the worker are up."""
    redis_port, api_port = _free_port(), _free_port()
    data_dir = tempfile.mkdtemp(prefix="descent-bench-")
    stack.callback(shutil.rmtree, data_dir, ignore_errors=True)  # after the processes that write there stop
    env = {
        **os.environ, "DESCENT_DATABASE_URL": url, "DESCENT_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "DESCENT_DATA_DIR": data_dir, "PYTHONUNBUFFERED": "1",
    }
    _process(stack, ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = stack.enter_context(open(Path(data_dir, "services.log"), "ab"))
    _process(stack, [sys.executable, "-m", "descent.cli", "api", "--port", str(api_port), "--log-level", "warning"],
             cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    _process(stack, [sys.executable, "-m", "descent.cli", "worker", "--queue", "cpu", "--loglevel", "WARNING"],
             cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return f"http://127.0.0.1:{api_port}/api/v1"


def latency(runs: int, admin_url: str = ADMIN_URL) -> list[float]:
    """Milliseconds from ``POST /experiments`` to the worker's claim, ``runs`` times in a row."""
    import httpx
    from sqlalchemy import text

    from store.db import make_engine, make_sessionmaker
    from store.scratch import scratch_database

    with scratch_database(admin_url, prefix="descent_bench") as url, ExitStack() as stack:
        base_url = _start_services(stack, url)
        db = make_engine(url)
        stack.callback(db.dispose)
        token, _ = user_token(make_sessionmaker(db))
        client = stack.enter_context(httpx.Client(base_url=base_url, timeout=30,
                                                  headers={"Authorization": f"Bearer {token}"}))
        _wait(lambda: client.get("/health").status_code == 200, 120, "the api")
        split_id = client.post("/splits", json={"dataset": "iris", "strategy": "stratified"}).json()["id"]
        body = {
            "name": "latency", "split_id": split_id, "architecture": {"name": "linear"},
            "solver": {"name": "adam", "base_lr": 0.01}, "training": {"epochs": 1, "device": "cpu"},
        }
        latencies = []
        for i in range(runs + 1):  # the first waits for the worker to start and pays its first-task imports: dropped
            sent = time.time()
            response = client.post("/experiments", json=body)
            response.raise_for_status()
            experiment_id = response.json()["id"]
            _wait(partial(_finished, client, experiment_id), 300 if i == 0 else 120, f"experiment {experiment_id}")
            with db.connect() as conn:
                started = conn.execute(
                    text("SELECT extract(epoch FROM started_at) FROM experiments WHERE id = :i"), {"i": experiment_id}
                ).scalar()
            latencies.append((float(started) - sent) * 1000)
            time.sleep(0.3)  # idle worker again: its presence thread and heartbeat are quiet
        return latencies[1:]


def latency_table(values: list[float], target_ms: float = 500) -> Table:
    p95 = statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]
    out = Table("queue latency: the api, one idle cpu worker, PostgreSQL and Redis as separate processes",
                ("measure", "result", "target"))
    out.add(f"POST /experiments → running, idle worker, {len(values)} runs",
            f"median {statistics.median(values):.0f} ms, p95 {p95:.0f} ms, min {min(values):.0f} ms, "
            f"max {max(values):.0f} ms", f"median < {target_ms:g} ms")
    return out


# -- descent bench engine ---------------------------------------------------------------------

TITLE = "Worker"
HELP = "engine throughput against a hand-written loop, and the queue latency of an idle worker"
QUICK = {"epochs": 1, "repeats": 1, "models": ["mlp128"], "latency_runs": 2}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--epochs", type=int, default=6, help="epochs of each training (default 6)")
    p.add_argument("--repeats", type=int, default=3, help="trainings per side; the median is shown (default 3)")
    p.add_argument("--models", type=lambda t: [m.strip() for m in t.split(",") if m.strip()], default=list(CONFIGS),
                   help=f"comma-separated, of {', '.join(CONFIGS)} (default: all)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--latency-runs", type=int, default=20, help="submissions timed (default 20)")
    p.add_argument("--skip-latency", action="store_true", help="only the throughput table")
    p.add_argument("--skip-throughput", action="store_true", help="only the latency table")


def measure(args: argparse.Namespace) -> list[Table]:
    unknown = [m for m in args.models if m not in CONFIGS]
    if unknown:
        raise ValueError(f"models: unknown {unknown}; known: {list(CONFIGS)}")
    tables = []
    if not args.skip_throughput:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        tables.append(throughput(args.device, args.epochs, args.repeats, args.models))
    if not args.skip_latency:
        tables.append(latency_table(latency(args.latency_runs)))
    return tables
