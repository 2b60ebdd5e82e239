"""``descent landscape ID``: a succeeded run's loss landscape (Li et al. 2018), computed by a lab
worker and stored, so asking again prints the stored one at once.  A line prints its values
along α; a plane its extremes; both the centre (the run's weights, whose validation loss is the
run's recorded one) and where training started, projected onto the directions."""

from __future__ import annotations

import argparse
import json

from descent.client import Client
from descent.commands.client_cmds import connection_arguments


def register(name: str, parser: argparse.ArgumentParser) -> None:
    connection_arguments(parser)
    parser.add_argument("id", type=int, metavar="ID", help="a succeeded experiment")
    parser.add_argument("--dims", type=int, choices=(1, 2), default=None, help="1: a line, 2: a plane (default 2)")
    parser.add_argument("--points", type=int, default=None, help="grid points per axis, odd (default 31 / 25)")
    parser.add_argument("--span", type=float, default=None, help="α, β in [-span, span] (default 1)")
    parser.add_argument("--which", choices=("last", "best"), default=None, help="the weights at the centre")
    parser.add_argument("--train-examples", type=int, default=None, help="train subset (default 512)")
    parser.add_argument("--val-examples", type=int, default=None, help="validation subset (default 512)")
    parser.add_argument("--seed", type=int, default=None, help="seeds the directions and subsets (default 0)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for it (default 600)")
    parser.add_argument("--json", action="store_true", help="print the landscape as the api answers it")


def run(args: argparse.Namespace) -> int:
    with Client(args.url, args.token) as client:
        try:
            landscape = client.landscape(args.id, timeout=args.timeout, dims=args.dims, points=args.points,
                                         span=args.span, which=args.which, train_examples=args.train_examples,
                                         val_examples=args.val_examples, seed=args.seed)
        except TimeoutError as exc:
            print(f"{exc}: is a lab worker running (`descent worker --queue lab`; `descent up` starts one)? "
                  "run the same command again to pick it up")
            return 1
    if args.json:
        print(json.dumps(landscape, indent=2))
        return 0 if landscape["status"] == "done" else 1
    print("\n".join(describe(landscape)))
    return 0 if landscape["status"] == "done" else 1


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def describe(landscape: dict) -> list[str]:
    """The lines ``descent landscape`` prints."""
    spec, result = landscape["spec"], landscape["result"]
    shape = f"{spec['points']} points" if spec["dims"] == 1 else f"{spec['points']}×{spec['points']}"
    head = (f"landscape {landscape['id']} of experiment {landscape['experiment_id']}: {landscape['status']} "
            f"({spec['dims']}-D, {shape}, span ±{spec['span']:g}, {spec['which']} weights, seed {spec['seed']})")
    if landscape["status"] == "failed":
        return [head, f"error: {landscape['error']}"]
    if result is None:
        return [head]
    centre = result["centre"]
    parts = [f"{part} " + ", ".join(f"{k} {_number(v)}" for k, v in centre[part].items()) for part in centre]
    start = result["start"]
    lines = [head + f" in {result['timings']['total_s']:.2f} s",
             "centre (the run's weights): " + "; ".join(parts),
             "start (initial weights): " + ", ".join(f"{n}={_number(c)}" for n, c in zip("αβ", start["coords"]))
             + f", {_number(start['distance'])} away; the directions span {100 * (1 - start['left_out']):.2g}% "
               "of that distance"]
    if spec["dims"] == 1:
        lines.append("α          train loss   val loss")
        val = result["val"].get("loss") or [None] * len(result["axis"])
        for a, t, v in zip(result["axis"], result["train"]["loss"], val):
            lines.append(f"{a:<10.4g} {_number(t):<12} {_number(v)}")
        return lines
    part = "val" if result["val"] else "train"
    cells = [(v, a, b) for row, b in zip(result[part]["loss"], result["axis"])
             for v, a in zip(row, result["axis"]) if v is not None]
    low, high = min(cells), max(cells)
    lines.append(f"{part} loss over the plane: min {_number(low[0])} at α={low[1]:.3g}, β={low[2]:.3g}; "
                 f"max {_number(high[0])} at α={high[1]:.3g}, β={high[2]:.3g}")
    return lines
