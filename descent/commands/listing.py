"""``descent ls``: one page of experiments, newest first, with each run's best validation
value from the api's list (``?best=``), marked with the direction the api sends."""

from __future__ import annotations

import argparse
import json

from core.statuses import STATUSES
from descent.client import Client
from descent.client_types import ExperimentListItem
from descent.commands.formatting import direction, num, short_time, spec_get, table

# the metric shown as BEST: the first of these a run has (as the dashboard's list)
DEFAULT_BEST = "val/accuracy,val/r2,val/loss"


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--tag")
    p.add_argument("--solver")
    p.add_argument("--split", type=int)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--best", default=DEFAULT_BEST, metavar="METRICS",
                   help=f"comma-separated metrics for the BEST column, first preferred (default: {DEFAULT_BEST})")
    p.add_argument("--json", action="store_true", help="print the api's JSON")


def best_text(e: ExperimentListItem) -> str:
    best = e.get("best")
    if not best:
        return "-"
    return f"{num(best['value'])} {best['name']} {direction(best['higher_is_better'])}".rstrip()


def ls(client: Client, args: argparse.Namespace) -> int:
    best = [n.strip() for n in args.best.split(",") if n.strip()]
    items = client.experiments(status=args.status, tag=args.tag, solver=args.solver, split_id=args.split,
                               limit=args.limit, best=best or None)
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    rows = [
        [
            str(e["id"]), e["name"], e["status"], e.get("solver") or spec_get(e, "solver", "name") or "",
            f"{100 * (e.get('progress') or 0):.0f}%", str(e.get("split_id", "")), ",".join(e.get("tags") or []),
            best_text(e), short_time(e.get("created_at")),
        ]
        for e in items
    ]
    print(table(["ID", "NAME", "STATUS", "SOLVER", "PROGRESS", "SPLIT", "TAGS", "BEST", "CREATED"], rows))
    return 0
