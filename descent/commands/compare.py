"""``descent compare``: a table of each run's best and final value per metric, each quality
metric's best run starred and a winner named.  Which way a metric improves is the api's
``higher_is_better`` on each summary row, and which metrics are diagnostics (no best, no winner)
is ``core.metrics.is_diagnostic``; this module keeps no rule of its own."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from core.metrics import is_diagnostic
from descent.client import Client
from descent.commands.diagnosis import short as diagnosis_short
from descent.commands.formatting import direction, num, table

# what decides the winner, first present wins
PRIMARY_METRICS = ("val/loss", "val/accuracy", "val/r2", "test/loss", "test/accuracy", "train/loss")
# /compare always sends series; when only its summary is wanted, ask for the fewest points it allows
SUMMARY_ONLY_POINTS = 4

Row = Mapping[str, Any]


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ids", nargs="+", type=int, metavar="ID")
    p.add_argument("--metric", action="append", dest="metrics", help="only these metrics (repeatable)")
    p.add_argument("--by", help="metric that decides the winner (default: val/loss, else val/accuracy, ...)")
    p.add_argument("--all", action="store_true", help="also show diagnostics (lr, grad_norm, timings)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON summary: each run's id, name, status, solver, scheduler and the latest "
                        "and best value of each metric")
    p.add_argument("--series", action="store_true", help="with --json: print the api's JSON, every series in full")
    p.add_argument("--diagnosis", action="store_true",
                   help="add a row naming what the convergence rules see in each run (rule@epoch, or ok)")


def compare(client: Client, args: argparse.Namespace) -> int:
    if args.json and args.series:
        print(json.dumps(client.compare(args.ids, names=args.metrics), indent=2))
        return 0
    rows = summary_rows(client, args.ids, names=args.metrics)
    experiments = {i: client.experiment(i) for i in args.ids}
    diagnoses = {i: client.diagnosis(i) for i in args.ids} if args.json or args.diagnosis else None
    if args.json:
        print(json.dumps(json_summary(rows, experiments, diagnoses), indent=2))
        return 0
    print(render_compare(rows, experiments, by=args.by, diagnostics=args.all, diagnoses=diagnoses))
    return 0


def json_summary(rows: list[Row], experiments: Mapping[int, Mapping[str, Any]],
                 diagnoses: Mapping[int, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Per run, in the order asked: what it is and, per metric, its latest value and (for losses and
    scores, not diagnostics) its best, each with its step; with ``diagnoses``, the convergence
    findings' rule names."""
    out = []
    for i, e in experiments.items():
        spec = e.get("spec") or {}
        metrics = {}
        for r in sorted((r for r in rows if r["experiment_id"] == i), key=lambda r: r["name"]):
            diagnostic = is_diagnostic(r["name"])
            metrics[r["name"]] = {
                "latest": r.get("final_value"), "latest_step": r.get("final_step"),
                "best": None if diagnostic else r.get("best_value"),
                "best_step": None if diagnostic else r.get("best_step"),
                "higher_is_better": None if diagnostic else r.get("higher_is_better"),
            }
        out.append({"id": e["id"], "name": e["name"], "status": e["status"], "solver": spec.get("solver"),
                    "scheduler": spec.get("scheduler"), "metrics": metrics})
        if diagnoses is not None:
            out[-1]["diagnosis"] = [f["rule"] for f in diagnoses[i].get("findings") or []]
    return out


def summary_rows(client: Client, ids: list[int], names: list[str] | None = None) -> list[dict[str, Any]]:
    """The api's summary rows: one per (experiment, metric) with best and final values and the
    metric's ``higher_is_better``."""
    body = client.compare(ids, names=names, max_points=SUMMARY_ONLY_POINTS)
    return list(body["summary"])


def best_run(cells: Mapping[int, Row]) -> int | None:
    """The run with the best ``best_value`` (largest where the api says ``higher_is_better``,
    smallest otherwise; ties to the lower id), or None when no run has one."""
    scored = {i: c for i, c in cells.items() if c.get("best_value") is not None}
    if not scored:
        return None
    higher = next(iter(scored.values()))["higher_is_better"]
    values = {i: c["best_value"] for i, c in scored.items()}
    best = max(values.values()) if higher else min(values.values())
    return min(i for i in values if values[i] == best)


def _cell_text(cell: Row, starred: bool, ranked: bool = True) -> list[str]:
    if not ranked:
        return ["", num(cell.get("final_value"))]
    best_text = num(cell.get("best_value"))
    if cell.get("best_step") is not None:
        best_text += f" @{cell['best_step']}"
    return [best_text + (" *" if starred else ""), num(cell.get("final_value"))]


def _winner_line(by_metric: dict[str, dict[int, Row]], winners: dict[str, int], ids: list[int],
                 experiments: Mapping[int, Mapping[str, Any]], by: str | None) -> str:
    everyone = [m for m in by_metric if set(by_metric[m]) == set(ids) and m in winners]
    deciding = by if by is not None else next((m for m in PRIMARY_METRICS if m in everyone), min(everyone, default=None))
    if deciding is None or deciding not in winners:
        return ""
    champion = winners[deciding]
    cell = by_metric[deciding][champion]
    return (f"\nwinner: #{champion} {experiments[champion]['name']} "
            f"(best {deciding} {num(cell['best_value'])} at step {cell.get('best_step')}; * marks each metric's best)")


def render_compare(
    rows: list[Row],
    experiments: Mapping[int, Mapping[str, Any]],
    *,
    by: str | None = None,
    diagnostics: bool = False,
    diagnoses: Mapping[int, Mapping[str, Any]] | None = None,
) -> str:
    """A table: a row per metric (↑ best is highest, ↓ lowest, as the api says), a (best @step,
    final) column pair per experiment under its id and name.  ``*`` marks each quality metric's
    best run; diagnostics (lr, grad_norm, timings) are left out unless ``diagnostics``, and then
    show only their final value.  The last
    line names the winner: the best run on ``by`` (default: the first of val/loss, val/accuracy,
    val/r2, test/loss, train/loss that every run has).  With ``diagnoses`` a last row names what the
    convergence rules see in each run."""
    ids = list(experiments)
    by_metric: dict[str, dict[int, Row]] = {}
    for r in rows:
        if diagnostics or not is_diagnostic(r["name"]) or r["name"] == by:
            by_metric.setdefault(r["name"], {})[r["experiment_id"]] = r
    # each run's name over its (best, final) pair, whole: a name cut short can be anyone's
    header = ["METRIC"] + [part for i in ids for part in (f"#{i} {experiments[i]['name']}\nbest", "\nfinal")]
    winners: dict[str, int] = {}
    body = []
    # losses and scores first, then diagnostics; a diagnostic has a final value only
    for metric in sorted(by_metric, key=lambda m: (is_diagnostic(m) and m != by, m)):
        cells = by_metric[metric]
        ranked = not is_diagnostic(metric) or metric == by
        winner = best_run(cells) if ranked else None
        if winner is not None:
            winners[metric] = winner
        arrow = direction(next(iter(cells.values())).get("higher_is_better")) if ranked else ""
        body.append([f"{metric} {arrow}".rstrip()]
                    + [t for i in ids for t in _cell_text(cells.get(i, {}), i == winner, ranked)])
    if diagnoses is not None:
        body.append(["diagnosis"] + [t for i in ids for t in (diagnosis_short(diagnoses[i]), "")])
    return table(header, body) + _winner_line(by_metric, winners, ids, experiments, by)
