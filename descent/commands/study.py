"""``descent study create|ls|show|cancel``: hyperparameter searches whose trials are ordinary
experiments, from the command line.

A study file is YAML or JSON holding one study spec (``core.studies.space.StudySpec``: name,
base, space, objective, strategy, pruner, budget, seed), or, with ``kind: tournament``, the body
of a solver tournament (base, solvers, lr_low, lr_high, points, pruner, metric, ...).  Its
``base`` may name its data as a ``split:`` block, as a spec for ``descent submit`` may.

``create`` follows the study until it ends, one line redrawn in place on a terminal (a plain
line per change in a log); Ctrl-C leaves it running."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from core.statuses import FINISHED
from descent.client import ApiError, Client, format_detail
from descent.client_types import Study, StudyTrial
from descent.commands.data import Arguments, _actions
from descent.commands.formatting import error_line, num, short_time, table
from descent.commands.specs import SpecFileError, load_specs, resolve_split
from descent.progress import BAR_WIDTH, STATUS_STYLES

KINDS = ("search", "tournament")
# the order counts are told in: the live ones first, then how trials ended
COUNT_ORDER = ("running", "queued", "succeeded", "pruned", "failed", "cancelled")
# statuses whose trials sort after the ones still in the race, whatever their value
OUT_OF_THE_RACE = ("pruned", "failed", "cancelled")
PRUNER_FIELDS = {"median": ("n_startup_trials", "n_warmup_steps"), "asha": ("min_resource", "reduction_factor")}


def arguments(parser: argparse.ArgumentParser, common: Arguments) -> None:
    """The actions, each with ``common`` (the connection arguments)."""
    add = _actions(parser, common)
    create = add("create", "start a study from a YAML or JSON file and follow it until it ends")
    create.add_argument("file", type=Path, metavar="FILE", help="the study file, .yaml/.yml or .json")
    create.add_argument("--detach", action="store_true", help="print the study's id and return at once")
    create.add_argument("--json", action="store_true", help="print the api's JSON of the study (at its end)")
    create.add_argument("--poll", type=float, default=1.0, help="seconds between progress updates")
    ls = add("ls", "list studies, newest first")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--project", type=int, default=None, help="only this project's studies")
    ls.add_argument("--json", action="store_true", help="print the api's JSON")
    show = add("show", "one study: its settings, its trials best first, the best and what mattered")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", help="print the api's JSON")
    cancel = add("cancel", "stop a study: no new trials, its live ones cancelled")
    cancel.add_argument("id", type=int)


def study(client: Client, args: argparse.Namespace) -> int:
    return {"create": create, "ls": ls, "show": show, "cancel": cancel}[args.action](client, args)


# -- create -------------------------------------------------------------------------------

def load_study(path: Path) -> tuple[str, dict[str, Any]]:
    """``(kind, body)`` from a study file: ``kind`` is ``search`` or ``tournament`` (its top-level
    ``kind:``, default search), ``body`` the rest, what the api takes."""
    specs = load_specs(path)
    if len(specs) != 1:
        raise SpecFileError(f"{path}: a study file holds one study, not a list of {len(specs)}")
    body = specs[0]
    kind = body.pop("kind", "search")
    if kind not in KINDS:
        raise SpecFileError(f"{path}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(body.get("base"), Mapping):
        raise SpecFileError(f"{path}: a study needs a `base:` mapping, the experiment spec every trial starts from")
    return kind, body


def create(client: Client, args: argparse.Namespace) -> int:
    kind, body = load_study(args.file)
    body["base"] = resolve_split(client, dict(body["base"]), {})  # a `split:` block becomes its id
    try:
        made = client.create_tournament(**body) if kind == "tournament" else client.create_study(body)
    except ApiError as exc:
        if exc.status_code == 401 or exc.status_code >= 500:
            raise
        print(f"{args.file}: {format_detail(exc.detail)}", file=sys.stderr)
        return 1
    budget = (made.get("spec") or {}).get("budget") or {}
    print(f"created study {made['id']} ({made['name']}): {made['max_trials']} trials, "
          f"{budget.get('parallel', '?')} at a time", flush=True)
    if args.detach:
        print(f"follow it: descent study show {made['id']}")
        return 0
    return follow(client, made["id"], poll_s=args.poll, as_json=args.json)


def follow(client: Client, study_id: int, *, poll_s: float = 1.0, as_json: bool = False,
           display: StudyDisplay | None = None) -> int:
    """Draw the study's progress until it is no longer running, then its summary; Ctrl-C leaves
    it running.  0 when it ended well, 1 otherwise."""
    display = display or StudyDisplay(interactive=False if as_json else None)
    try:
        while True:
            current = client.study(study_id)
            display.update(current)
            if current["status"] != "running":
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:
        display.close()
        print(f"\ndetached; study {study_id} goes on. Follow it: descent study show {study_id}; "
              f"stop it: descent study cancel {study_id}")
        return 130
    display.close()
    print(json.dumps(current, indent=2) if as_json else "\n" + describe(current))
    return 0 if current["status"] == "done" else 1  # stopped: cancelled, or out of time


def finished(study: Mapping[str, Any]) -> int:
    counts = study.get("counts") or {}
    return sum(counts.get(status, 0) for status in FINISHED)


def counts_text(study: Mapping[str, Any]) -> str:
    counts = study.get("counts") or {}
    return ", ".join(f"{status} {counts[status]}" for status in COUNT_ORDER if counts.get(status))


def objective(study: Mapping[str, Any]) -> dict[str, Any]:
    return (study.get("spec") or {}).get("objective") or {}


def best_text(study: Mapping[str, Any]) -> str:
    """``0.9667 val/accuracy ↑ (adam lr=0.01)``, or ``-`` before any trial has a value."""
    best = study.get("best")
    if not best or best.get("value") is None:
        return "-"
    goal = objective(study)
    arrow = {"max": "↑", "min": "↓"}.get(goal.get("mode"), "")
    return f"{num(best['value'])} {goal.get('metric', '')} {arrow}".rstrip() + f" ({best['label']})"


def progress_line(study: Mapping[str, Any]) -> str:
    """The plain line a log gets: ``study 3 iris tournament  7/12 trials  succeeded 5, ...  best ...``."""
    status = "" if study["status"] == "running" else f"  {study['status']}"
    return (f"study {study['id']} {study['name']}  {finished(study)}/{study['max_trials']} trials  "
            f"{counts_text(study) or 'no trials yet'}  best {best_text(study)}{status}")


def render_progress(study: Mapping[str, Any]) -> Group:
    """The terminal's view: name, a bar of finished trials and the counts, the best so far under
    them (on a line of its own, so a narrow terminal cuts the counts, not the best)."""
    grid = Table.grid(padding=(0, 1), expand=True)
    grid.add_column(no_wrap=True, max_width=40, overflow="ellipsis")
    grid.add_column(width=BAR_WIDTH)
    grid.add_column(no_wrap=True, justify="right")
    grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    total = max(study["max_trials"], 1)
    grid.add_row(
        Text(f"study {study['id']} {study['name']}", style="bold"),
        ProgressBar(total=total, completed=min(finished(study), total), width=BAR_WIDTH),
        Text(f"{finished(study)}/{study['max_trials']} trials"),
        Text.assemble((study["status"], STATUS_STYLES.get(study["status"], "cyan")), "  ", counts_text(study)),
    )
    return Group(grid, Text(f"  best {best_text(study)}", no_wrap=True, overflow="ellipsis"))


class StudyDisplay:
    """Draws one study; call ``update`` with its newest state, ``close`` at the end.  On a
    terminal the line is redrawn in place, elsewhere a plain line is written when it changes."""

    def __init__(self, stream: TextIO | None = None, interactive: bool | None = None):
        self.stream = stream or sys.stdout
        self.console = Console(file=self.stream, force_terminal=interactive, highlight=False)
        self.interactive = self.console.is_terminal if interactive is None else interactive
        self._live: Live | None = None
        self._last: str | None = None

    def update(self, study: Mapping[str, Any]) -> None:
        if self.interactive:
            if self._live is None:
                self._live = Live(console=self.console, auto_refresh=False, redirect_stdout=False,
                                  redirect_stderr=False)
                self._live.start()
            self._live.update(render_progress(study), refresh=True)
            return
        line = progress_line(study)
        if line != self._last:
            self._last = line
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.stream.flush()


# -- show, ls, cancel -----------------------------------------------------------------------

def show(client: Client, args: argparse.Namespace) -> int:
    found = client.study(args.id)
    print(json.dumps(found, indent=2) if args.json else describe(found))
    return 0


def sorted_trials(trials: list[StudyTrial], mode: str | None) -> list[StudyTrial]:
    """Best first: the trials still in the race by value (those without one yet after them), then
    the pruned by value, then the failed and cancelled; ties by number."""
    sign = -1 if mode == "max" else 1

    def key(t: StudyTrial) -> tuple:
        rank = OUT_OF_THE_RACE.index(t["status"]) + 1 if t["status"] in OUT_OF_THE_RACE else 0
        value = t.get("value")
        return rank, value is None, sign * value if value is not None else 0.0, t["number"]

    return sorted(trials, key=key)


def trials_table(study: Study) -> str:
    rows = [[str(t["number"]), str(t["experiment_id"]), t["status"], t.get("label") or "", num(t.get("value")),
             num(t.get("epoch"))]
            for t in sorted_trials(study.get("trials") or [], objective(study).get("mode"))]
    return table(["#", "EXPERIMENT", "STATUS", "LABEL", objective(study).get("metric", "VALUE").upper(), "EPOCH"],
                 rows)


def pruner_text(pruner: Mapping[str, Any]) -> str:
    name = pruner.get("name", "none")
    settings = ", ".join(f"{k} {pruner[k]}" for k in PRUNER_FIELDS.get(name, ()) if k in pruner)
    return f"{name} ({settings})" if settings else name


def budget_text(study: Mapping[str, Any]) -> str:
    budget = (study.get("spec") or {}).get("budget") or {}
    minutes = budget.get("max_minutes")
    return (f"{study['max_trials']} trials, {budget.get('parallel', '?')} at a time, "
            + (f"at most {num(minutes)} min" if minutes else "no time limit"))


def describe(study: Study) -> str:
    """``show``'s text: the settings, the trials best first, the best trial, the importance."""
    spec = study.get("spec") or {}
    goal = objective(study)
    fields = [
        ("study", f"{study['id']} {study['name']}"), ("kind", study.get("kind", "search")),
        ("status", study["status"]),
        ("objective", f"{goal.get('metric', '?')} {goal.get('mode') or ''} ({goal.get('use', 'best')} epoch)"),
        ("strategy", spec.get("strategy", "-")), ("pruner", pruner_text(spec.get("pruner") or {})),
        ("budget", budget_text(study)), ("split", study.get("split_id", "-")),
        ("trials", f"{finished(study)}/{study['max_trials']} finished"
                   + (f": {counts_text(study)}" if counts_text(study) else "")),
        ("created", short_time(study.get("created_at")) or "-"),
        ("finished", short_time(study.get("finished_at")) or "-"),
    ]
    lines = [f"{key + ':':<11}{value}" for key, value in fields]
    # why it stopped or what keeps it waiting (the api's `note`; `error` in the first contract)
    note = study.get("note") or study.get("error")
    if note:
        lines.append(f"{'note:':<11}{error_line(note)}")
    if study.get("trials"):
        lines += ["", trials_table(study)]
    best = study.get("best")
    if best and best.get("value") is not None:
        lines += ["", f"best: trial {best['number']} (experiment {best['experiment_id']}) {best['label']}: "
                      f"{goal.get('metric', 'value')} {num(best['value'])} at epoch {best.get('epoch', '-')}"]
    importance = study.get("importance") or {}
    if importance:
        ranked = sorted(importance.items(), key=lambda kv: -kv[1])
        lines += ["", "importance:", *table(None, [[name, f"{share:.2f}"] for name, share in ranked]).splitlines()]
    return "\n".join(lines)


def ls(client: Client, args: argparse.Namespace) -> int:
    page = client.studies(limit=args.limit, project_id=args.project)
    if args.json:
        print(json.dumps(page["items"], indent=2))
        return 0
    print(table(["ID", "NAME", "KIND", "STATUS", "TRIALS", "BEST", "CREATED"], [list_row(s) for s in page["items"]]))
    if page.get("total", 0) > len(page["items"]):
        print(f"({len(page['items'])} of {page['total']}; --limit for more)")
    return 0


def list_row(s: Study) -> list[str]:
    return [str(s["id"]), s["name"], s.get("kind", "search"), s["status"], f"{finished(s)}/{s['max_trials']}",
            best_text(s), short_time(s.get("created_at"))]


def cancel(client: Client, args: argparse.Namespace) -> int:
    stopped = client.cancel_study(args.id)
    live = (stopped.get("counts") or {}).get("running", 0)
    note = f" ({live} running trials stop at their next step)" if live else ""
    print(f"study {args.id}: {stopped['status']}{note}")
    return 0
