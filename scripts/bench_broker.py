"""Compare the two server-free Celery brokers ``descent up`` could use: kombu's filesystem
transport and its SQLAlchemy transport over an SQLite file.

For each, a consumer process (configured exactly as the worker is, through
``core.queue.celery_config``) waits on a queue while this process publishes messages one at a
time; we report the one-way delivery latency (publish -> consumer has it) and the CPU the
consumer burns while the queue is empty (the cost of polling, paid all day by an idle worker).
``--race N`` instead has two processes publish N messages each, 2 ms apart, while the consumer
polls, and counts the messages the consumer could not decode (kombu's filesystem transport
lets a consumer take a file its producer has created but not yet written).

    .venv/bin/python scripts/bench_broker.py [--messages 200] [--idle-s 10] [--poll 0.01]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUEUE = "bench"
TRANSPORTS = {
    "filesystem": lambda data_dir: "filesystem://",
    "sqla+sqlite": lambda data_dir: f"sqla+sqlite:///{Path(data_dir, 'broker.db').resolve()}",
}


def _connection(broker_url: str, data_dir: str, poll: float):
    from kombu import Connection

    from core.queue import celery_config
    from core.settings import Settings

    config = celery_config(Settings(data_dir=Path(data_dir), broker_url=broker_url, broker_poll_interval=poll))
    return Connection(broker_url, transport_options=config.get("broker_transport_options", {}))


def consume(broker_url: str, data_dir: str, poll: float, messages: int, idle_s: float) -> None:
    """Child process: report latencies of ``messages`` messages, then CPU seconds spent idle."""
    with _connection(broker_url, data_dir, poll) as conn:
        queue = conn.SimpleQueue(QUEUE)
        print("ready", flush=True)
        latencies = []
        for _ in range(messages):
            msg = queue.get(block=True, timeout=60)
            latencies.append(time.time() - msg.payload["sent"])
            msg.ack()
        cpu0, wall0 = time.process_time(), time.monotonic()
        try:
            queue.get(block=True, timeout=idle_s)
        except queue.Empty:
            pass
        idle_cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
        print(json.dumps({"latencies": latencies, "idle_cpu_fraction": idle_cpu}), flush=True)


def race_consume(broker_url: str, data_dir: str, poll: float, expected: int) -> None:
    got = broken = 0
    deadline = time.monotonic() + 120
    with _connection(broker_url, data_dir, poll) as conn:
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


def race_produce(broker_url: str, data_dir: str, poll: float, n: int) -> None:
    with _connection(broker_url, data_dir, poll) as conn:
        queue = conn.SimpleQueue(QUEUE)
        for i in range(n):
            queue.put({"i": i})
            time.sleep(0.002)


def race(name: str, n: int, poll: float) -> dict:
    with tempfile.TemporaryDirectory() as data_dir:
        url = TRANSPORTS[name](data_dir)
        me = [sys.executable, __file__]
        child = subprocess.Popen([*me, "--race-consume", url, data_dir, str(poll), str(2 * n)],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        producers = [subprocess.Popen([*me, "--race-produce", url, data_dir, str(poll), str(n)]) for _ in range(2)]
        for p in producers:
            p.wait(timeout=300)
        result = json.loads(child.stdout.readline())
        child.wait(timeout=30)
    return {"transport": name, "sent": 2 * n, **result, "lost": 2 * n - result["got"]}


def measure(name: str, messages: int, idle_s: float, poll: float) -> dict:
    with tempfile.TemporaryDirectory() as data_dir:
        url = TRANSPORTS[name](data_dir)
        child = subprocess.Popen(
            [sys.executable, __file__, "--consume", url, data_dir, str(poll), str(messages), str(idle_s)],
            stdout=subprocess.PIPE, text=True,
        )
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{name}: consumer did not start")
        with _connection(url, data_dir, poll) as conn:
            queue = conn.SimpleQueue(QUEUE)
            publish_s = []
            for _ in range(messages):
                t0 = time.perf_counter()
                queue.put({"sent": time.time()})
                publish_s.append(time.perf_counter() - t0)
                time.sleep(0.03)  # one message at a time: latency, not throughput
        result = json.loads(child.stdout.readline())
        child.wait(timeout=idle_s + 30)
    lat = sorted(result["latencies"])
    return {
        "transport": name,
        "latency_median_ms": 1000 * statistics.median(lat),
        "latency_p95_ms": 1000 * lat[int(0.95 * (len(lat) - 1))],
        "publish_median_ms": 1000 * statistics.median(publish_s),
        "idle_cpu_percent": 100 * result["idle_cpu_fraction"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--poll", type=float, default=0.01, help="polling interval of both transports (s)")
    parser.add_argument("--race", type=int, default=0, help="count lost messages over 2 x N racing publishes")
    parser.add_argument("--consume", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--race-consume", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--race-produce", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.race_consume or args.race_produce:
        url, data_dir, poll, n = args.race_consume or args.race_produce
        (race_consume if args.race_consume else race_produce)(url, data_dir, float(poll), int(n))
        return 0
    if args.race:
        for name in TRANSPORTS:
            r = race(name, args.race, args.poll)
            print(f"{name:<14} sent {r['sent']}  received {r['got']}  undecodable {r['broken']}  lost {r['lost']}")
        return 0
    if args.consume:
        url, data_dir, poll, messages, idle_s = args.consume
        consume(url, data_dir, float(poll), int(messages), float(idle_s))
        return 0
    rows = [measure(name, args.messages, args.idle_s, args.poll) for name in TRANSPORTS]
    print(f"poll interval {args.poll * 1000:g} ms, {args.messages} messages, {args.idle_s:g} s idle")
    print(f"{'transport':<14}{'latency p50':>13}{'latency p95':>13}{'publish p50':>13}{'idle CPU':>10}")
    for r in rows:
        print(
            f"{r['transport']:<14}{r['latency_median_ms']:>10.1f} ms{r['latency_p95_ms']:>10.1f} ms"
            f"{r['publish_median_ms']:>10.2f} ms{r['idle_cpu_percent']:>9.1f}%"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
