"""``descent rm``, ``tag``, ``note`` and ``rename``: delete finished experiments, and change an
experiment's tags, description or name (``PATCH /experiments/{id}``) in any state."""

from __future__ import annotations

import argparse
import sys

from descent.client import ApiError, Client


def rm_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ids", nargs="+", type=int, metavar="ID")


def tag_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("tags", nargs="*", metavar="TAG", help="tags to add")
    p.add_argument("--remove", action="append", default=[], metavar="TAG", help="a tag to remove (repeatable)")


def note_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("text", metavar="TEXT", help='the description ("" clears it)')


def rename_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("name", metavar="NAME")


def rm(client: Client, args: argparse.Namespace) -> int:
    """Delete each run; a live one is skipped saying how to stop it first, and the rest go on."""
    failed = 0
    for experiment_id in args.ids:
        try:
            client.delete(experiment_id)
        except ApiError as exc:
            if exc.status_code not in (404, 409):
                raise
            failed += 1
            fix = (f"; stop it with `descent cancel {experiment_id}`, then `descent rm {experiment_id}` again"
                   if exc.status_code == 409 else "")
            print(f"experiment {experiment_id}: not deleted: {exc.detail}{fix}", file=sys.stderr)
            continue
        print(f"experiment {experiment_id}: deleted")
    return 1 if failed else 0


def tag(client: Client, args: argparse.Namespace) -> int:
    if not args.tags and not args.remove:
        raise ValueError("name a tag to add, or --remove TAG")
    current = client.experiment(args.id)["tags"]
    tags = [t for t in dict.fromkeys([*current, *args.tags]) if t not in set(args.remove)]
    e = client.edit(args.id, tags=tags)
    print(f"experiment {args.id}: tags {', '.join(e['tags']) or '(none)'}")
    return 0


def note(client: Client, args: argparse.Namespace) -> int:
    client.edit(args.id, description=args.text)
    print(f"experiment {args.id}: description {'set' if args.text else 'cleared'}")
    return 0


def rename(client: Client, args: argparse.Namespace) -> int:
    e = client.edit(args.id, name=args.name)
    print(f"experiment {args.id}: renamed to {e['name']}")
    return 0
