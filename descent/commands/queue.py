"""``descent queue``: how deep each worker queue is (every project's runs) and why each queued run
of the caller's projects waits, with what to do about it, as the api reads it from its database."""

from __future__ import annotations

import argparse
import json

from descent.client import Client
from descent.client_types import Queue
from descent.commands.formatting import table


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, default=None, help="most waiting runs listed (the api's default: 200)")
    p.add_argument("--json", action="store_true", help="print the api's JSON")


def duration(seconds: float | None) -> str:
    """``95.2`` → ``1m35s``; ``None`` → ``-``."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def render_queue(body: Queue) -> str:
    depth = table(["QUEUE", "QUEUED", "RUNNING", "WORKERS", "IDLE", "OLDEST"], [
        [name, str(q["queued"]), str(q["running"]), str(q["workers"]), str(q["idle_workers"]),
         duration(q["oldest_queued_s"])] for name, q in body["queues"].items()])
    if not body["waiting"]:
        return depth + "\n\nnone of your projects' runs is waiting"
    waiting = table(["ID", "NAME", "QUEUE", "POSITION", "WAITED", "WHY"], [
        [str(w["id"]), w["name"], w["queue"], str(w["position"]), duration(w["waited_s"]), w["reason"]]
        for w in body["waiting"]])
    return f"{depth}\n\n{waiting}"


def queue(client: Client, args: argparse.Namespace) -> int:
    body = client.queue(limit=args.limit)
    print(json.dumps(body, indent=2) if args.json else render_queue(body))
    return 0
