"""The client subcommands: ``submit``, ``ls``, ``show``, ``compare``, ``cancel``, ``logs``.

They talk to a running api over HTTP through ``descent.client`` (``--url``, or ``DESCENT_URL``,
default http://127.0.0.1:8000) and import nothing of the server."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core.statuses import FINISHED, STATUSES
from descent.client import DEFAULT_URL, ApiError, Client
from descent.progress import LiveDisplay, RunState

# what decides `descent compare`'s winner, first present wins; metrics whose last word is one of
# QUALITY_WORDS are compared, the rest (lr, grad_norm, timings) are diagnostics
PRIMARY_METRICS = ("val/loss", "val/accuracy", "val/r2", "test/loss", "test/accuracy", "train/loss")
QUALITY_WORDS = ("loss", "error", "accuracy", "acc", "r2", "f1", "auc")
# the store's rule for "best" (store.models.metrics.HIGHER_IS_BETTER), restated: the client imports no server code
HIGHER_IS_BETTER = ("accuracy", "acc", "r2", "f1", "precision", "recall", "auc")
# /compare always sends series; when only its summary is wanted, ask for the fewest points it allows
SUMMARY_ONLY_POINTS = 4


def register(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help=f"api address (default: $DESCENT_URL or {DEFAULT_URL})")
    _ARGUMENTS[name](parser)


def run(args: argparse.Namespace) -> int:
    client = Client(args.url)
    try:
        return _COMMANDS[args.command](client, args)
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()


# -- spec files --------------------------------------------------------------------------


def load_specs(path: Path) -> list[dict[str, Any]]:
    """Experiment specs from a YAML or JSON file: one mapping, or a list of them."""
    text = path.read_text()
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    specs = data if isinstance(data, list) else [data]
    for i, spec in enumerate(specs):
        if not isinstance(spec, Mapping):
            raise ValueError(f"{path}: experiment {i} is not a mapping")
    return [dict(s) for s in specs]


def resolve_split(client: Client, spec: dict[str, Any], cache: dict[str, int]) -> dict[str, Any]:
    """A spec may name its data as ``split: {dataset, strategy, fractions, seed}`` instead of a
    ``split_id``: the split is created once (per distinct block) and its id put in its place."""
    spec = dict(spec)
    block = spec.pop("split", None)
    if block is None:
        return spec
    if "split_id" in spec:
        raise ValueError("give either split_id or a split block, not both")
    if not isinstance(block, Mapping) or "dataset" not in block:
        raise ValueError("split must be a mapping with at least a dataset")
    key = json.dumps(block, sort_keys=True)
    if key not in cache:
        created = client.create_split(
            block["dataset"], strategy=block.get("strategy"), fractions=block.get("fractions"), seed=block.get("seed")
        )
        cache[key] = created["id"]
    spec["split_id"] = cache[key]
    return spec


# -- submit ------------------------------------------------------------------------------


def _submit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("specs", nargs="+", type=Path, metavar="SPEC", help="spec file(s), .yaml/.yml or .json")
    p.add_argument("--split", type=int, default=None, help="train on this split id (overrides the file)")
    p.add_argument("--detach", action="store_true", help="print the ids and return at once")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between progress updates")


def submit(client: Client, args: argparse.Namespace) -> int:
    specs = [spec for path in args.specs for spec in load_specs(path)]
    cache: dict[str, int] = {}
    runs = []
    for spec in specs:
        if args.split is not None:
            spec = {k: v for k, v in spec.items() if k != "split"} | {"split_id": args.split}
        created = client.submit(resolve_split(client, spec, cache))
        runs.append(created)
        print(f"submitted experiment {created['id']} ({created['name']})", flush=True)
    if args.detach:
        return 0
    return follow(client, [r["id"] for r in runs], poll_s=args.poll)


def follow(client: Client, ids: list[int], *, poll_s: float = 0.5, display: LiveDisplay | None = None) -> int:
    """Draw the runs' progress until all have finished; Ctrl-C detaches (the runs go on).
    Returns 0 when every run succeeded, 1 otherwise."""
    display = display or LiveDisplay()
    states: dict[int, RunState] = {}
    try:
        while True:
            latest = latest_metrics(client, ids)
            for experiment_id in ids:
                states[experiment_id] = run_state(client.experiment(experiment_id), latest.get(experiment_id, {}))
            display.update([states[i] for i in ids])
            if all(s.finished for s in states.values()):
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:
        display.close()
        print(f"\ndetached; the run goes on. Follow it with: descent show {' '.join(map(str, ids))}")
        return 130
    display.close()
    return 0 if all(s.status == "succeeded" for s in states.values()) else 1


def run_state(experiment: Mapping[str, Any], metrics: dict[str, float]) -> RunState:
    spec = experiment.get("spec") or {}
    epochs = (spec.get("training") or {}).get("epochs")
    return RunState(
        id=experiment["id"],
        name=experiment["name"],
        status=experiment["status"],
        # the stored epoch counts finished epochs as of the last heartbeat; success means all of them
        epoch=epochs if experiment["status"] == "succeeded" and epochs else experiment.get("epoch") or 0,
        epochs=epochs,
        progress=experiment.get("progress") or 0.0,
        metrics=metrics,
        error=_first_line(experiment.get("error")),
    )


def latest_metrics(client: Client, ids: list[int]) -> dict[int, dict[str, float]]:
    """Each run's metrics at their newest step, from one ``/compare`` summary for all runs."""
    out: dict[int, dict[str, float]] = {i: {} for i in ids}
    for row in compare_rows(client, ids):
        if row.get("final_value") is not None:
            out[row["experiment_id"]][row["name"]] = row["final_value"]
    return out


def _first_line(text: str | None) -> str | None:
    return text.strip().splitlines()[-1][:120] if text and text.strip() else None


# -- ls ----------------------------------------------------------------------------------


def _ls_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--tag")
    p.add_argument("--solver")
    p.add_argument("--split", type=int)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true", help="print the api's JSON")


def ls(client: Client, args: argparse.Namespace) -> int:
    items = client.experiments(status=args.status, tag=args.tag, solver=args.solver, split_id=args.split,
                               limit=args.limit)
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    rows = [
        [
            str(e["id"]), e["name"], e["status"], e.get("solver") or _spec_get(e, "solver", "name") or "",
            f"{100 * (e.get('progress') or 0):.0f}%", str(e.get("split_id", "")), ",".join(e.get("tags") or []),
            _short_time(e.get("created_at")),
        ]
        for e in items
    ]
    print(table(["ID", "NAME", "STATUS", "SOLVER", "PROGRESS", "SPLIT", "TAGS", "CREATED"], rows))
    return 0


# -- show --------------------------------------------------------------------------------


def _show_arguments(p: argparse.ArgumentParser) -> None:
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
        *[(k, e.get(k) or "-") for k in ("created_at", "enqueued_at", "started_at", "finished_at")],
    ]
    for key, value in fields:
        print(f"{key + ':':<13}{value}")
    if e.get("error"):
        print("error:\n  " + "\n  ".join(str(e["error"]).rstrip().splitlines()))
    spec = e.get("spec") or {}
    for section in ("architecture", "solver", "scheduler", "training"):
        if spec.get(section):
            print(f"{section + ':':<13}{_inline(spec[section])}")
    summary = compare_rows(client, [e["id"]])
    if summary:
        print()
        print(table(["METRIC", "FINAL", "BEST", "BEST STEP"],
                    [[r["name"], _num(r.get("final_value")), _num(r.get("best_value")), str(r.get("best_step", ""))]
                     for r in summary]))
    return 0


# -- compare -----------------------------------------------------------------------------


def _compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ids", nargs="+", type=int, metavar="ID")
    p.add_argument("--metric", action="append", dest="metrics", help="only these metrics (repeatable)")
    p.add_argument("--by", help="metric that decides the winner (default: val/loss, else val/accuracy, ...)")
    p.add_argument("--all", action="store_true", help="also show diagnostics (lr, grad_norm, timings)")
    p.add_argument("--json", action="store_true", help="print the api's JSON")


def compare(client: Client, args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(client.compare(args.ids, names=args.metrics, max_points=SUMMARY_ONLY_POINTS), indent=2))
        return 0
    rows = compare_rows(client, args.ids, names=args.metrics)
    experiments = {i: client.experiment(i) for i in args.ids}
    print(render_compare(rows, experiments, by=args.by, diagnostics=args.all))
    return 0


def compare_rows(client: Client, ids: list[int], names: list[str] | None = None) -> list[dict[str, Any]]:
    """The api's summary rows: one per (experiment, metric) with best and final values."""
    body = client.compare(ids, names=names, max_points=SUMMARY_ONLY_POINTS)
    return list(body["summary"])


def lower_is_better(metric: str) -> bool:
    """Direction of a metric by its name (losses and errors down; accuracy, r2, f1, auc up), the
    rule the store uses for "best"."""
    leaf = metric.rsplit("/", 1)[-1].lower()
    return not any(leaf == w or leaf.endswith("_" + w) for w in HIGHER_IS_BETTER)


def render_compare(
    rows: list[dict[str, Any]],
    experiments: Mapping[int, Mapping[str, Any]],
    *,
    by: str | None = None,
    diagnostics: bool = False,
) -> str:
    """A table: a row per metric, a (best @step, final) column pair per experiment.  ``*`` marks
    each quality metric's best run (losses and errors lowest; accuracy, r2, f1, auc highest);
    diagnostics (lr, grad_norm, timings) are left out unless ``diagnostics``, and never starred.
    The last line names the winner: the best run on ``by`` (default: the first of val/loss,
    val/accuracy, val/r2, test/loss, train/loss that every run has)."""
    ids = list(experiments)
    by_metric: dict[str, dict[int, Mapping[str, Any]]] = {}
    for r in rows:
        if diagnostics or is_quality_metric(r["name"]) or r["name"] == by:
            by_metric.setdefault(r["name"], {})[r["experiment_id"]] = r
    header = ["METRIC"] + [part for i in ids for part in (f"#{i} {experiments[i]['name'][:14]} best", "final")]
    winners: dict[str, int] = {}
    body = []
    for metric in sorted(by_metric):
        cells = by_metric[metric]
        winner = best_run(metric, cells) if is_quality_metric(metric) or metric == by else None
        if winner is not None:
            winners[metric] = winner
        line = [metric]
        for i in ids:
            cell = cells.get(i, {})
            best_text = _num(cell.get("best_value"))
            if cell.get("best_step") is not None:
                best_text += f" @{cell['best_step']}"
            line += [best_text + (" *" if i == winner else ""), _num(cell.get("final_value"))]
        body.append(line)
    out = table(header, body)
    everyone = [m for m in by_metric if set(by_metric[m]) == set(ids) and m in winners]
    deciding = by if by is not None else next((m for m in PRIMARY_METRICS if m in everyone), min(everyone, default=None))
    if deciding is not None and deciding in winners:
        champion = winners[deciding]
        cell = by_metric[deciding][champion]
        out += (f"\nwinner: #{champion} {experiments[champion]['name']} "
                f"(best {deciding} {_num(cell['best_value'])} at step {cell.get('best_step')}; * marks each metric's best)")
    return out


def is_quality_metric(name: str) -> bool:
    leaf = name.rsplit("/", 1)[-1].lower()
    return any(leaf == w or leaf.endswith("_" + w) for w in QUALITY_WORDS)


def best_run(metric: str, cells: Mapping[int, Mapping[str, Any]]) -> int | None:
    """The run with the best ``best_value`` of ``metric`` (ties to the lower id), or None."""
    scored = {i: c["best_value"] for i, c in cells.items() if c.get("best_value") is not None}
    if not scored:
        return None
    best = min(scored.values()) if lower_is_better(metric) else max(scored.values())
    return min(i for i in scored if scored[i] == best)


# -- cancel ------------------------------------------------------------------------------


def _cancel_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ids", nargs="+", type=int, metavar="ID")


def cancel(client: Client, args: argparse.Namespace) -> int:
    for experiment_id in args.ids:
        e = client.cancel(experiment_id)
        note = " (the worker stops it at the next step, within about 0.25 s)" if e.get("cancel_requested") and e["status"] == "running" else ""
        print(f"experiment {experiment_id}: {e['status']}{note}")
    return 0


# -- logs --------------------------------------------------------------------------------


def _logs_arguments(p: argparse.ArgumentParser) -> None:
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
    rows = [[str(step)] + [_num(points[step].get(n)) for n in names] for step in sorted(points)]
    print()
    print(table(["STEP", *names], rows))
    return 0


# -- formatting --------------------------------------------------------------------------


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    return "\n".join(lines)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _inline(section: Mapping[str, Any]) -> str:
    name = section.get("name", "")
    rest = ", ".join(f"{k}={v}" for k, v in section.items() if k != "name" and v is not None)
    return f"{name} ({rest})" if rest else str(name)


def _short_time(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else ""


def _spec_get(e: Mapping[str, Any], *path: str) -> Any:
    node: Any = e.get("spec") or {}
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


_ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "submit": _submit_arguments,
    "ls": _ls_arguments,
    "show": _show_arguments,
    "compare": _compare_arguments,
    "cancel": _cancel_arguments,
    "logs": _logs_arguments,
}
_COMMANDS: dict[str, Callable[[Client, argparse.Namespace], int]] = {
    "submit": submit,
    "ls": ls,
    "show": show,
    "compare": compare,
    "cancel": cancel,
    "logs": logs,
}
