"""``descent worker``: run training workers.

* ``descent worker --gpus 0,1`` (or ``--gpus all``): one child process per card, each with ``CUDA_VISIBLE_DEVICES``
  set to its card and consuming the ``gpu`` queue one training at a time; a child that dies is
  restarted (its experiment is re-sent and resumes from its checkpoint).
* ``descent worker``: one worker on the ``gpu`` queue when this machine has a GPU, else ``cpu``
  (``--queue`` chooses); ``--concurrency N`` trains N experiments at once in a process pool.
* ``descent worker --queue lab``: the optimizer lab's short jobs (races, loss landscapes); with
  ``--concurrency N`` they run in N threads of one process (each takes well under a second of torch).

Each worker is ``celery -A worker.celery_app worker`` configured by the ``DESCENT_*`` variables."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

from core.queue import LAB_QUEUE

RESTART_DELAY_S = 2.0
STOP_TIMEOUT_S = 30.0


def register(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", choices=("gpu", "cpu", LAB_QUEUE), default=None,
                        help="queue to consume (default: gpu when a GPU is visible, else cpu; "
                             "lab: the optimizer lab's races and landscapes)")
    parser.add_argument("--gpus", default=None,
                        help="comma-separated GPU indices, or all: one worker process per card on the gpu queue")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="trainings at once in one worker (default 1; ignored with --gpus)")
    parser.add_argument("--loglevel", default="INFO", help="Celery log level (default INFO)")


def parse_gpus(text: str, visible: int | None = None) -> list[str]:
    """Card indices from ``--gpus``: a list such as ``0,1``, or ``all`` for every card this
    process sees (``visible``, counted with torch when not given)."""
    if text.strip() == "all":
        count = _gpu_count() if visible is None else visible
        if count == 0:
            raise ValueError("--gpus all: no GPU is visible to this process; check the NVIDIA driver "
                             "(nvidia-smi) or run a CPU worker with --queue cpu")
        return [str(i) for i in range(count)]
    gpus = [g.strip() for g in text.split(",") if g.strip()]
    if not gpus or not all(g.isdigit() for g in gpus):
        raise ValueError(f"--gpus: expected comma-separated card indices such as 0,1, or all; got {text!r}")
    if len(set(gpus)) != len(gpus):
        raise ValueError(f"--gpus: a card is listed twice in {text!r}")
    return gpus


def celery_argv(queue: str, concurrency: int, name: str, loglevel: str) -> list[str]:
    if concurrency == 1:
        pool = ["--pool", "solo"]
    else:  # lab jobs are short and share one imported torch; trainings each get a process
        pool = ["--pool", "threads" if queue == LAB_QUEUE else "prefork", "--concurrency", str(concurrency)]
    return [
        sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-Q", queue, *pool,
        "-n", name, "--loglevel", loglevel, "--without-gossip", "--without-mingle",
    ]


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def _has_gpu() -> bool:
    return _gpu_count() > 0


def run(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        print("descent worker: --concurrency must be at least 1", file=sys.stderr)
        return 2
    host = socket.gethostname()
    if args.gpus is None:
        queue = args.queue or ("gpu" if _has_gpu() else "cpu")
        argv = celery_argv(queue, args.concurrency, f"{queue}@{host}", args.loglevel)
        os.execv(sys.executable, argv)  # the worker is this process: signals reach Celery directly
    try:
        gpus = parse_gpus(args.gpus)
    except ValueError as exc:
        print(f"descent worker: {exc}", file=sys.stderr)
        return 2
    if args.queue == "cpu":
        print("descent worker: --gpus consumes the gpu queue; drop --queue cpu", file=sys.stderr)
        return 2
    return supervise({
        gpu: (celery_argv("gpu", 1, f"gpu{gpu}@{host}", args.loglevel), {**os.environ, "CUDA_VISIBLE_DEVICES": gpu})
        for gpu in gpus
    })


class _Stop(Exception):
    pass


def _raise_stop(signum, _frame):
    raise _Stop(signal.Signals(signum).name)


def supervise(children_spec: dict[str, tuple[list[str], dict[str, str]]]) -> int:
    """Run one child per entry, restart any that exits, and on SIGINT/SIGTERM stop them all
    with a warm shutdown (SIGTERM: Celery finishes nothing new and re-queues its task)."""
    children: dict[str, subprocess.Popen] = {}
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for key, (argv, env) in children_spec.items():
            children[key] = subprocess.Popen(argv, env=env)
            print(f"descent worker: gpu {key} → pid {children[key].pid}", flush=True)
        while True:
            for key, child in list(children.items()):
                code = child.poll()
                if code is not None:
                    print(f"descent worker: gpu {key} worker exited with {code}; restarting", file=sys.stderr)
                    time.sleep(RESTART_DELAY_S)
                    argv, env = children_spec[key]
                    children[key] = subprocess.Popen(argv, env=env)
            time.sleep(0.5)
    except _Stop:
        for s in previous:
            signal.signal(s, signal.SIG_IGN)
        return 0
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        for s, handler in previous.items():
            signal.signal(s, handler)
