"""``descent bench broker``: the two server-free Celery brokers ``descent up`` could use, kombu's
filesystem transport and its SQLAlchemy transport over an SQLite file.

For each, a consumer process waits on a queue while this process publishes messages one at a
time; we report the one-way delivery latency (publish -> consumer has it) and the CPU the
consumer burns while the queue is empty (the cost of polling, paid all day by an idle worker).
The SQLAlchemy transport is configured as the worker configures it (``core.queue.celery_config``);
the product no longer offers the filesystem transport, so its folders and poll interval are set
here.  ``--race N`` instead has two processes publish N messages each, 2 ms apart, while the
consumer polls, and counts the messages the consumer could not decode (kombu's filesystem
transport lets a consumer take a file its producer has created but not yet written).

The consumer and the racing producers run as ``python -m bench.broker ROLE ...``."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.table import Table

QUEUE = "bench"
TRANSPORTS = ("filesystem", "sqla+sqlite")
ROOT = Path(__file__).resolve().parents[1]  # where ``bench`` is importable from, for the child processes


def broker_url(transport: str, data_dir: str) -> str:
    if transport == "filesystem":
        return "filesystem://"
    return f"sqla+sqlite:///{Path(data_dir, 'broker.db').resolve()}"


def transport_options(url: str, data_dir: str, poll: float) -> dict:
    """The filesystem transport's folders (one exchange folder for both directions, processed
    messages kept aside) and poll interval; for the others, what the worker's configuration gives."""
    if url.startswith("filesystem"):
        folders = {key: Path(data_dir, key) for key in ("queue", "processed", "control")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folders["queue"]), "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]), "store_processed": True,
            "control_folder": str(folders["control"]), "polling_interval": poll,
        }
    from core.queue import celery_config
    from core.settings import Settings

    config = celery_config(Settings(data_dir=Path(data_dir), broker_url=url, broker_poll_interval=poll))
    return config.get("broker_transport_options", {})


def _connection(url: str, data_dir: str, poll: float):
    from kombu import Connection

    return Connection(url, transport_options=transport_options(url, data_dir, poll))


def consume(url: str, data_dir: str, poll: float, messages: int, idle_s: float) -> None:
    """Child process: report latencies of ``messages`` messages, then CPU seconds spent idle."""
    with _connection(url, data_dir, poll) as conn:
        queue = conn.SimpleQueue(QUEUE)
        print("ready", flush=True)
        latencies, broken = [], 0
        for _ in range(messages):
            try:
                msg = queue.get(block=True, timeout=30)
            except queue.Empty:
                break
            except ValueError:  # a half-written message file: the filesystem transport's race
                broken += 1
                continue
            latencies.append(time.time() - msg.payload["sent"])
            msg.ack()
        cpu0, wall0 = time.process_time(), time.monotonic()
        try:
            queue.get(block=True, timeout=idle_s)
        except queue.Empty:
            pass
        idle_cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
        print(json.dumps({"latencies": latencies, "idle_cpu_fraction": idle_cpu, "broken": broken}), flush=True)


def race_consume(url: str, data_dir: str, poll: float, expected: int) -> None:
    got = broken = 0
    deadline = time.monotonic() + 120
    with _connection(url, data_dir, poll) as conn:
        queue = conn.SimpleQueue(QUEUE)
        print("ready", flush=True)
        while got + broken < expected and time.monotonic() < deadline:
            try:
                queue.get(block=True, timeout=1).ack()
                got += 1
            except queue.Empty:
                continue
            except ValueError:  # an empty or half-written message file
                broken += 1
    print(json.dumps({"got": got, "broken": broken}), flush=True)


def race_produce(url: str, data_dir: str, poll: float, n: int) -> None:
    with _connection(url, data_dir, poll) as conn:
        queue = conn.SimpleQueue(QUEUE)
        for i in range(n):
            queue.put({"i": i})
            time.sleep(0.002)


def _child(role: str, *args, stdout=subprocess.PIPE) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "bench.broker", role, *map(str, args)], stdout=stdout, text=True,
                            env=env, cwd=ROOT)


def _ready(child: subprocess.Popen, what: str) -> None:
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        raise RuntimeError(f"{what}: consumer did not start")


def _result(child: subprocess.Popen, what: str) -> dict:
    line = child.stdout.readline()
    if not line.strip():
        raise RuntimeError(f"{what}: the consumer exited without a result (its error is above)")
    return json.loads(line)


def race(transport: str, n: int, poll: float) -> dict:
    with tempfile.TemporaryDirectory() as data_dir:
        url = broker_url(transport, data_dir)
        child = _child("race-consume", url, data_dir, poll, 2 * n)
        _ready(child, transport)
        producers = [_child("race-produce", url, data_dir, poll, n, stdout=None) for _ in range(2)]
        for p in producers:
            p.wait(timeout=300)
        result = _result(child, transport)
        child.wait(timeout=30)
    return {"sent": 2 * n, **result, "lost": 2 * n - result["got"]}


def latency(transport: str, messages: int, idle_s: float, poll: float) -> dict:
    with tempfile.TemporaryDirectory() as data_dir:
        url = broker_url(transport, data_dir)
        child = _child("consume", url, data_dir, poll, messages, idle_s)
        _ready(child, transport)
        with _connection(url, data_dir, poll) as conn:
            queue = conn.SimpleQueue(QUEUE)
            publish_s = []
            for _ in range(messages):
                t0 = time.perf_counter()
                queue.put({"sent": time.time()})
                publish_s.append(time.perf_counter() - t0)
                time.sleep(0.03)  # one message at a time: latency, not throughput
        result = _result(child, transport)
        child.wait(timeout=idle_s + 30)
    lat = sorted(result["latencies"])
    return {
        "p50": 1000 * statistics.median(lat), "p95": 1000 * lat[int(0.95 * (len(lat) - 1))],
        "publish": 1000 * statistics.median(publish_s), "idle_cpu": 100 * result["idle_cpu_fraction"],
        "lost": messages - len(lat),
    }


# -- descent bench broker ---------------------------------------------------------------------

TITLE = "Server-free broker"
HELP = "delivery latency, idle CPU and lost messages of kombu's filesystem and SQLite transports"
QUICK = {"messages": 10, "idle_s": 0.5}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--messages", type=int, default=200, help="messages published one at a time (default 200)")
    p.add_argument("--idle-s", type=float, default=10.0, help="seconds the consumer idles, CPU measured")
    p.add_argument("--poll", type=float, default=0.01, help="polling interval of both transports, s (default 0.01)")
    p.add_argument("--race", type=int, default=0, help="instead count lost messages over 2 x N racing publishes")


def measure(args: argparse.Namespace) -> list[Table]:
    if args.race:
        out = Table(f"two producers, {args.race} messages each 2 ms apart, poll interval {args.poll * 1000:g} ms",
                    ("transport", "sent", "received", "undecodable", "lost"))
        for transport in TRANSPORTS:
            r = race(transport, args.race, args.poll)
            out.add(transport, r["sent"], r["got"], r["broken"], r["lost"])
        return [out]
    out = Table(f"poll interval {args.poll * 1000:g} ms, {args.messages} messages, {args.idle_s:g} s idle",
                ("transport", "delivery p50", "p95", "publish p50", "idle CPU of a worker", "p50 vs sqla+sqlite"))
    rows = {transport: latency(transport, args.messages, args.idle_s, args.poll) for transport in TRANSPORTS}
    for transport, r in rows.items():
        out.add(transport, f"{r['p50']:.1f} ms", f"{r['p95']:.1f} ms", f"{r['publish']:.2f} ms",
                f"{r['idle_cpu']:.1f} %", f"{r['p50'] / rows['sqla+sqlite']['p50']:.2f}x")
        if r["lost"]:
            out.notes.append(f"{transport}: {r['lost']} of {args.messages} messages lost or undecodable")
    return [out]


ROLES = {"consume": (consume, (str, str, float, int, float)), "race-consume": (race_consume, (str, str, float, int)),
         "race-produce": (race_produce, (str, str, float, int))}

if __name__ == "__main__":
    fn, types = ROLES[sys.argv[1]]
    fn(*(t(v) for t, v in zip(types, sys.argv[2:], strict=True)))
