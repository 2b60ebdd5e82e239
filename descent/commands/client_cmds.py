"""The client subcommands: ``submit``, ``ls``, ``show``, ``compare``, ``cancel``, ``logs``.

They talk to a running api over HTTP through ``descent.client`` (``--url``, or ``DESCENT_URL``,
default http://127.0.0.1:8000) and import nothing of the server.  Each family lives in its own
module (``submit``, ``listing``, ``show``, ``compare``, ``cancel``); this one registers their
arguments and runs them with one client and one way of reporting errors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from descent.client import DEFAULT_URL, ApiError, Client
from descent.commands import cancel, compare, listing, show, submit


def register(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help=f"api address (default: $DESCENT_URL or {DEFAULT_URL})")
    _ARGUMENTS[name](parser)


def run(args: argparse.Namespace) -> int:
    client = Client(args.url)
    try:
        return _COMMANDS[args.command](client, args)
    except (ApiError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()


_ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "submit": submit.arguments,
    "ls": listing.arguments,
    "show": show.show_arguments,
    "compare": compare.arguments,
    "cancel": cancel.arguments,
    "logs": show.logs_arguments,
}
_COMMANDS: dict[str, Callable[[Client, argparse.Namespace], int]] = {
    "submit": submit.submit,
    "ls": listing.ls,
    "show": show.show,
    "compare": compare.compare,
    "cancel": cancel.cancel,
    "logs": show.logs,
}
