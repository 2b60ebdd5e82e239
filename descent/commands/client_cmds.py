"""The client subcommands: ``submit``, ``ls``, ``show``, ``compare``, ``cancel``, ``logs``, ``queue``,
``rm``, ``tag``, ``note``, ``rename``, ``datasets``, ``splits``, ``study``.

They talk to a running api over HTTP through ``descent.client`` (``--url``, or ``DESCENT_URL``,
default http://127.0.0.1:8000; ``--token``, or ``DESCENT_TOKEN``, else the token ``descent login``
saved for that address) and import nothing of the server.  Each family lives in its own
module (``submit``, ``listing``, ``show``, ``compare``, ``cancel``, ``queue``, ``edit``, ``data``,
``study``); this one registers their arguments and runs them with one client; ``descent.cli.main``
tells their errors."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from descent.client import DEFAULT_URL, Client
from descent.commands import cancel, compare, data, edit, listing, queue, show, study, submit


def register(name: str, parser: argparse.ArgumentParser) -> None:
    if name in _WITH_ACTIONS:  # ``descent datasets ls --url …``: each action takes the connection arguments
        _WITH_ACTIONS[name](parser, connection_arguments)
        return
    connection_arguments(parser)
    _ARGUMENTS[name](parser)


def connection_arguments(parser: argparse.ArgumentParser) -> None:
    """``--url`` and ``--token``, which every command that talks to the api takes."""
    parser.add_argument("--url", default=None, help=f"api address (default: $DESCENT_URL or {DEFAULT_URL})")
    parser.add_argument("--token", default=None,
                        help="API token (default: $DESCENT_TOKEN, else the one `descent login` saved for the address)")


def not_signed_in(url: str) -> str:
    """The one line a command prints when the api answers 401."""
    return f"not signed in to {url}: run `descent login --url {url}` (or pass --token / set DESCENT_TOKEN)"


def run(args: argparse.Namespace) -> int:
    """Run the command with one client; its errors are told by ``descent.cli.main``."""
    with Client(args.url, args.token) as client:
        return _COMMANDS[args.command](client, args)


_ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "submit": submit.arguments,
    "ls": listing.arguments,
    "show": show.show_arguments,
    "compare": compare.arguments,
    "cancel": cancel.arguments,
    "logs": show.logs_arguments,
    "queue": queue.arguments,
    "rm": edit.rm_arguments,
    "tag": edit.tag_arguments,
    "note": edit.note_arguments,
    "rename": edit.rename_arguments,
}
_WITH_ACTIONS: dict[str, Callable[[argparse.ArgumentParser, Callable[[argparse.ArgumentParser], None]], None]] = {
    "datasets": data.datasets_arguments,
    "splits": data.splits_arguments,
    "study": study.arguments,
}
_COMMANDS: dict[str, Callable[[Client, argparse.Namespace], int]] = {
    "submit": submit.submit,
    "ls": listing.ls,
    "show": show.show,
    "compare": compare.compare,
    "cancel": cancel.cancel,
    "logs": show.logs,
    "queue": queue.queue,
    "rm": edit.rm,
    "tag": edit.tag,
    "note": edit.note,
    "rename": edit.rename,
    "datasets": data.datasets,
    "splits": data.splits,
    "study": study.study,
}
