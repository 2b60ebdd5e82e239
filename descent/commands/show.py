"""``descent show`` (one run: its state, spec sections and best/final metrics) and ``descent
logs`` (its status history, then every recorded point as a table)."""

from __future__ import annotations

import argparse
import json

from core.metrics import is_diagnostic
from core.statuses import FINISHED
from descent.client import Client
from descent.commands.compare import summary_rows
from descent.commands.diagnosis import block as diagnosis_block
from descent.commands.formatting import direction, inline, num, table


def show_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true", help="print the api's JSON")


def show(client: Client, args: argparse.Namespace) -> int:
    e = client.experiment(args.id)
    if args.json:
        print(json.dumps(e, indent=2))
        return 0
    fields = [
        ("id", e["id"]), ("name", e["name"]), ("status", e["status"]),
        ("progress", f"{100 * (e.get('progress') or 0):.0f}% (epoch {e.get('epoch', 0)}, step {e.get('step', 0)})"),
        ("split", e.get("split_id")), ("tags", ", ".join(e.get("tags") or []) or "-"),
        ("worker", " on ".join(str(x) for x in (e.get("device"), e.get("worker_host")) if x) or "-"),
        ("attempt", e.get("attempt")),
        *([("crashes", f"{e['crashes']} (its training process died; see warning or error)")] if e.get("crashes") else []),
        *[(k, e.get(k) or "-") for k in ("created_at", "enqueued_at", "started_at", "finished_at")],
    ]
    for key, value in fields:
        print(f"{key + ':':<13}{value}")
    # warning: trouble the run goes on despite (a checkpoint not written); stopped: early stopping's reason
    for key, label in (("error", "error"), ("warning", "warning"), ("stop_reason", "stopped")):
        if e.get(key):
            print(f"{label}:\n  " + "\n  ".join(str(e[key]).rstrip().splitlines()))
    spec = e.get("spec") or {}
    sections = [(s, inline(spec[s])) for s in ("architecture", "solver", "scheduler", "training") if spec.get(s)]
    if sections:
        print("spec:\n" + "\n".join("  " + line for line in table(None, sections).splitlines()))
    for line in diagnosis_block(client.diagnosis(e["id"])):  # before the metrics table's blank line
        print(line)
    summary = summary_rows(client, [e["id"]])
    if summary:
        print()
        print(metrics_table(summary))
    final = {r["name"]: r.get("final_value") for r in summary}
    if final.get("range/suggested_lr") is not None:  # an LR range test (training.range_test)
        low = final.get("range/min_loss_lr")
        how = "steepest descent of the smoothed loss" if final.get("range/steepest_lr") is not None else "no descent"
        print(f"suggested base_lr: {num(final['range/suggested_lr'])} ({how}; minimum at {num(low)}, "
              f"{num(low)}/10 = {num(None if low is None else low / 10)})")
    return 0


def metrics_table(summary: list) -> str:
    """Losses and scores with their direction, final and best value; then diagnostics (lr,
    grad_norm, ...) with their final value alone, since none of their values is a "best"."""
    rows = []
    for r in sorted(summary, key=lambda r: (is_diagnostic(r["name"]), r["name"])):
        if is_diagnostic(r["name"]):
            rows.append([r["name"], num(r.get("final_value")), "", ""])
        else:
            rows.append([f"{r['name']} {direction(r.get('higher_is_better'))}".rstrip(), num(r.get("final_value")),
                         num(r.get("best_value")), num(r.get("best_step"))])
    return table(["METRIC", "FINAL", "BEST", "BEST STEP"], rows)


def logs_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=int)
    p.add_argument("--metric", action="append", dest="metrics", help="only these metrics (repeatable)")
    p.add_argument("--max-points", type=int, default=None, help="downsample each series to this many points")


def logs(client: Client, args: argparse.Namespace) -> int:
    """Status history, then every recorded point as a table: a row per step, a column per metric."""
    e = client.experiment(args.id)
    for key, label in (("created_at", "created"), ("enqueued_at", "queued"), ("started_at", "started"),
                       ("finished_at", e["status"])):
        if e.get(key):
            print(f"{e[key]}  {label}")
    if e["status"] not in FINISHED:
        print(f"{'':<26}{e['status']} (epoch {e.get('epoch', 0)}, {100 * (e.get('progress') or 0):.0f}%)")
    if e.get("error"):
        print("error:\n  " + "\n  ".join(str(e["error"]).rstrip().splitlines()))
    series = client.metrics(args.id, names=args.metrics, max_points=args.max_points)
    if not series:
        print("no metrics recorded yet")
        return 0
    names = sorted(series)
    points: dict[int, dict[str, float]] = {}
    for name in names:
        for step, value in zip(series[name].steps, series[name].values):
            points.setdefault(step, {})[name] = value
    rows = [[str(step)] + [num(points[step].get(n)) for n in names] for step in sorted(points)]
    print()
    print(table(["STEP", *names], rows))
    return 0
