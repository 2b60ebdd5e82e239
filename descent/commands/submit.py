"""``descent submit``: send spec files to the api, then draw the runs' progress until they end
(``--detach`` returns at once; Ctrl-C detaches and the runs go on)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from descent.client import ApiError, Client, format_detail
from descent.commands.compare import summary_rows
from descent.commands.formatting import error_line
from descent.commands.specs import load_specs, resolve_split
from descent.progress import LiveDisplay, RunState, waiting_reasons


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("specs", nargs="+", type=Path, metavar="SPEC", help="spec file(s), .yaml/.yml or .json")
    p.add_argument("--split", type=int, default=None, help="train on this split id (overrides the file)")
    p.add_argument("--detach", action="store_true", help="print the ids and return at once")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between progress updates")


def submit(client: Client, args: argparse.Namespace) -> int:
    """All or nothing: every file is read and every spec dry-run by the api before any is
    submitted, so a typo in the last file submits none of the others."""
    specs = [(path, spec) for path in args.specs for spec in load_specs(path)]
    cache: dict[str, int] = {}
    if args.split is not None:
        specs = [(path, {k: v for k, v in spec.items() if k != "split"} | {"split_id": args.split})
                 for path, spec in specs]
    # a `split:` block becomes its split's id here (the api makes one split per distinct block)
    specs = [(path, resolve_split(client, spec, cache)) for path, spec in specs]
    problems = [problem for path, spec in specs if (problem := refusal(client, path, spec))]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"nothing submitted: {len(problems)} of {len(specs)} specs refused", file=sys.stderr)
        return 1
    runs = []
    for _, spec in specs:
        created = client.submit(spec)
        runs.append(created)
        print(f"submitted experiment {created['id']} ({created['name']})", flush=True)
        if created.get("warning"):  # e.g. no worker serving its queue has been seen
            print(f"  warning: {created['warning']}", flush=True)
    if args.detach:
        return 0
    return follow(client, [r["id"] for r in runs], poll_s=args.poll)


def refusal(client: Client, path: Path, spec: Mapping[str, Any]) -> str | None:
    """Why the api would refuse ``spec`` from ``path`` (its dry run's 4xx, naming the file and
    the experiment), or None when it would take it."""
    try:
        client.dry_run(spec)
    except ApiError as exc:
        if exc.status_code == 401 or exc.status_code >= 500:
            raise
        name = spec.get("name")
        return f"{path}: {name if isinstance(name, str) else 'an experiment'}: {format_detail(exc.detail)}"
    return None


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
            display.update(waiting_reasons(client, [states[i] for i in ids]))
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
        step=experiment.get("step") or 0,
        progress=experiment.get("progress") or 0.0,
        metrics=metrics,
        error=error_line(experiment.get("error")),
    )


def latest_metrics(client: Client, ids: list[int]) -> dict[int, dict[str, float]]:
    """Each run's metrics at their newest step, from one ``/compare`` summary for all runs."""
    out: dict[int, dict[str, float]] = {i: {} for i in ids}
    for row in summary_rows(client, ids):
        if row.get("final_value") is not None:
            out[row["experiment_id"]][row["name"]] = row["final_value"]
    return out
