"""``descent cancel``: a queued run is cancelled at once, a running one at its next step."""

from __future__ import annotations

import argparse

from descent.client import Client


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ids", nargs="+", type=int, metavar="ID")


def cancel(client: Client, args: argparse.Namespace) -> int:
    for experiment_id in args.ids:
        e = client.cancel(experiment_id)
        running = e.get("cancel_requested") and e["status"] == "running"
        note = " (the worker stops it at the next step, within about 0.25 s)" if running else ""
        print(f"experiment {experiment_id}: {e['status']}{note}")
    return 0
