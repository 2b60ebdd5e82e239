"""``descent race FILE``: race solvers on a 2-D test function from a YAML or JSON race spec
(``function``, ``start``, ``steps``, ``racers``: each a ``solver`` section as an experiment's, an
optional ``scheduler`` and ``label``), run by a lab worker; prints where each racer ended, and the
dashboard page that animates it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from descent.client import Client
from descent.commands.client_cmds import connection_arguments


def register(name: str, parser: argparse.ArgumentParser) -> None:
    connection_arguments(parser)
    parser.add_argument("file", type=Path, metavar="FILE", help="the race spec, .yaml/.yml or .json")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for it (default 120)")
    parser.add_argument("--json", action="store_true", help="print the race as the api answers it")


def run(args: argparse.Namespace) -> int:
    spec = yaml.safe_load(args.file.read_text())  # YAML reads JSON too
    with Client(args.url, args.token) as client:
        try:
            race = client.create_race(spec, timeout=args.timeout)
        except TimeoutError as exc:
            print(f"{exc}: is a lab worker running (`descent worker --queue lab`; `descent up` starts one)?")
            return 1
        page = f"{client.base_url}/#/races/{race['id']}"
    if args.json:
        print(json.dumps(race, indent=2))
    else:
        print("\n".join([*describe(race), f"watch it: {page}"]))
    return 0 if race["status"] == "done" else 1


def _number(value: float) -> str:
    return f"{value:.4g}"


def describe(race: dict) -> list[str]:
    """The lines ``descent race`` prints: a head, then one line per racer, lowest final value first."""
    spec = race["spec"]
    head = (f"race {race['id']}: {race['status']}, {spec['function']} from ({', '.join(map(_number, spec['start']))}), "
            f"{spec['steps']} steps")
    if race["status"] == "failed":
        return [head, f"error: {race['error']}"]
    racers = sorted(race["result"]["racers"], key=lambda r: r["loss"][-1])
    width = max(len(r["label"]) for r in racers)
    lines = [head + f" in {race['result']['compute_s']:.2f} s", f"{'racer':<{width}}  final f      ends at"]
    for r in racers:
        x, y = r["trajectory"][-1]
        note = f"  could not run: {r['error']}" if r["error"] else "  diverged" if r["diverged"] else ""
        lines.append(f"{r['label']:<{width}}  {_number(r['loss'][-1]):<11}  ({_number(x)}, {_number(y)}){note}")
    return lines
