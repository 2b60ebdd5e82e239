"""``descent datasets ls|upload|show|rm`` and ``descent splits ls|create|show|rm``: the data a
run trains on, from the command line (before, uploads and splits were reachable only through
the api or the dashboard).  A dataset is named by a built-in's name, an upload's name or its id."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from descent.client import Client
from descent.client_types import Dataset, Split

PARTS = ("train", "val", "test")


Arguments = Callable[[argparse.ArgumentParser], None]


def _actions(parser: argparse.ArgumentParser, common: Arguments) -> Callable[..., argparse.ArgumentParser]:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        common(p)
        return p

    return action


def datasets_arguments(parser: argparse.ArgumentParser, common: Arguments) -> None:
    """The actions, each with ``common`` (the connection arguments)."""
    add = _actions(parser, common)
    ls = add("ls", "list the built-in datasets and your uploads")
    ls.add_argument("--json", action="store_true", help="print the api's JSON")
    upload = add("upload", "upload a CSV (a header row; one column is the target) or an .npz (x, y)")
    upload.add_argument("file", help="the .csv or .npz file")
    upload.add_argument("--name", help="what to call it (default: the file name without its extension)")
    upload.add_argument("--target", help="a CSV's target column (default: the last)")
    upload.add_argument("--task", choices=("classification", "regression"), help="default: inferred from the target")
    upload.add_argument("--project", type=int, help="the project to store it in (default: your first)")
    show = add("show", "one dataset: size, features, classes")
    show.add_argument("dataset", help="a built-in's name, an upload's name or id")
    show.add_argument("--json", action="store_true", help="print the api's JSON")
    rm = add("rm", "delete an upload (once no split uses it)")
    rm.add_argument("dataset", help="an upload's name or id")


def splits_arguments(parser: argparse.ArgumentParser, common: Arguments) -> None:
    add = _actions(parser, common)
    ls = add("ls", "list the splits you can use")
    ls.add_argument("--json", action="store_true", help="print the api's JSON")
    create = add("create", "split a dataset into train/val/test once, for good")
    create.add_argument("dataset", help="a built-in's name, an upload's name or id")
    create.add_argument("--strategy", choices=("random", "stratified"), help="default: the api's (random)")
    create.add_argument("--fractions", type=fractions, help="train,val,test shares, e.g. 0.7,0.2,0.1")
    create.add_argument("--seed", type=int, help="the shuffle's seed (default 0)")
    show = add("show", "one split: sizes and class counts per part")
    show.add_argument("split", type=int, help="the split's id")
    show.add_argument("--json", action="store_true", help="print the api's JSON")
    rm = add("rm", "delete a split (once no experiment uses it)")
    rm.add_argument("split", type=int, help="the split's id")


def fractions(text: str) -> dict[str, float]:
    """``0.7,0.2,0.1`` → ``{"train": 0.7, "val": 0.2, "test": 0.1}``."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three numbers such as 0.7,0.2,0.1, got {text!r}") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected train,val,test (three numbers), got {len(values)}: {text!r}")
    return dict(zip(PARTS, values))


def describe_dataset(d: Dataset) -> str:
    shape = "×".join(map(str, d["feature_shape"]))
    kind = f"classification, {d['n_classes']} classes" if d["task"] == "classification" and d.get("n_classes") \
        else d["task"]
    where = "built-in" if d.get("project_id") is None else f"upload {d['id']} in project {d['project_id']}"
    return f"{d['name']} ({where}): {d['n_samples']:,} samples of {shape} features, {kind}"


def describe_split(s: Split) -> str:
    sizes = ", ".join(f"{part} {s['sizes'][part]:,}" for part in PARTS if part in s["sizes"])
    shares = "/".join(f"{s['fractions'][p]:g}" for p in PARTS if p in s["fractions"])
    return f"split {s['id']} of {s['dataset']} ({s['strategy']} {shares}, seed {s['seed']}, " \
           f"project {s['project_id']}): {sizes}"


def _show(found: object, as_json: bool, lines: list[str]) -> None:
    print(json.dumps(found, indent=2) if as_json else "\n".join(lines))


def datasets(client: Client, args: argparse.Namespace) -> int:
    if args.action == "ls":
        found = client.datasets()
        print(json.dumps(found, indent=2) if args.json else "\n".join(describe_dataset(d) for d in found))
    elif args.action == "upload":
        name = args.name or args.file.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        made = client.upload_dataset(args.file, name=name, target=args.target, task=args.task,
                                     project_id=args.project)
        print(f"uploaded {describe_dataset(made)}\nsplit it: descent splits create {made['name']}")
    elif args.action == "show":
        found = client.dataset(args.dataset)
        _show(found, args.json, [describe_dataset(found)] + [
            f"  class {label}: {count:,}" for label, count in (found.get("class_counts") or {}).items()])
    else:
        found = client.dataset(args.dataset)
        client.delete_dataset(found["id"])
        print(f"deleted dataset {found['id']} ({found['name']})")
    return 0


def splits(client: Client, args: argparse.Namespace) -> int:
    if args.action == "ls":
        found = client.splits()
        print(json.dumps(found, indent=2) if args.json else "\n".join(describe_split(s) for s in found))
    elif args.action == "create":
        made = client.create_split(args.dataset, strategy=args.strategy, fractions=args.fractions, seed=args.seed)
        print(f"{describe_split(made)}\nuse it: split_id: {made['id']} in a spec")
    elif args.action == "show":
        found = client.split(args.split)
        _show(found, args.json, [describe_split(found)] + [
            f"  {part}: " + ", ".join(f"class {label} {n:,}" for label, n in counts[part].items())
            for counts in [found.get("class_counts") or {}] for part in PARTS if part in counts])
    else:
        client.delete_split(args.split)
        print(f"deleted split {args.split}")
    return 0
