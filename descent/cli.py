"""``descent`` — the command line.  Subcommands live in ``descent.commands.<name>`` and are
imported only when used, so ``descent ls`` never pays for torch."""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module

# subcommand -> (module, one-line help)
COMMANDS = {
    "up": ("descent.commands.up", "start api + worker on the embedded default (SQLite, no servers)"),
    "api": ("descent.commands.api", "serve the HTTP api (production topology)"),
    "worker": ("descent.commands.worker", "run a training worker (production topology)"),
    "migrate": ("descent.commands.migrate", "upgrade the database to the newest schema"),
    "user": ("descent.commands.user", "create, list, disable users, set passwords (on the database directly)"),
    "token": ("descent.commands.token", "create, list, revoke API tokens (on the database directly)"),
    "login": ("descent.commands.login", "sign in to an api and save an API token for it"),
    "logout": ("descent.commands.login", "revoke the token saved for an api and forget it"),
    "bench": ("descent.commands.bench", "run a benchmark and print a table"),
    "submit": ("descent.commands.client_cmds", "submit an experiment spec (yaml or json) and follow it"),
    "ls": ("descent.commands.client_cmds", "list experiments"),
    "show": ("descent.commands.client_cmds", "show one experiment"),
    "compare": ("descent.commands.client_cmds", "compare experiments: best and final metrics"),
    "cancel": ("descent.commands.client_cmds", "cancel an experiment"),
    "logs": ("descent.commands.client_cmds", "print an experiment's metrics and status history"),
    "queue": ("descent.commands.client_cmds", "how deep each worker queue is and why your queued runs wait"),
    "rm": ("descent.commands.client_cmds", "delete finished experiments with their metrics and checkpoints"),
    "tag": ("descent.commands.client_cmds", "add tags to an experiment (or --remove them)"),
    "note": ("descent.commands.client_cmds", "set an experiment's description"),
    "rename": ("descent.commands.client_cmds", "rename an experiment"),
    "datasets": ("descent.commands.client_cmds", "list, upload, show and delete datasets (ls|upload|show|rm)"),
    "splits": ("descent.commands.client_cmds", "list, create, show and delete train/val/test splits (ls|create|show|rm)"),
    "study": ("descent.commands.client_cmds",
              "hyperparameter searches and solver tournaments: start one and follow it, list, show, cancel "
              "(create|ls|show|cancel)"),
    "landscape": ("descent.commands.landscape",
                  "a succeeded run's loss landscape along random directions (computed once, then stored)"),
    "race": ("descent.commands.race", "race solvers on a 2-D test function (a YAML or JSON race spec)"),
}
# set to 1 for the traceback behind a one-line error
DEBUG_ENV = "DESCENT_DEBUG"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="descent", description="Descent: a self-hosted training service.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        try:
            mod = import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            p.set_defaults(_missing=True)
            continue
        mod.register(name, p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if getattr(args, "_missing", False):
        print(f"descent {args.command}: not available in this build", file=sys.stderr)
        return 2
    try:
        code = int(import_module(args._module).run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except BrokenPipeError:
        return closed_pipe()
    except Exception as exc:
        message = explain(exc)
        if message is None or os.environ.get(DEBUG_ENV) == "1":
            raise
        print(message, file=sys.stderr)
        return 1


def closed_pipe() -> int:
    """The reader went away (``descent ls | head``): stop quietly, as Unix tools do.  Standard
    output points at /dev/null so the interpreter's last flush cannot complain again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test's captured output)
        pass
    return 141  # 128 + SIGPIPE: what a shell reports for a tool the closed pipe ended


def _api_base(url: object) -> str:
    """The api address a request URL went to (what ``--url`` names)."""
    from descent.client import API_PREFIX

    return str(url).split(API_PREFIX, 1)[0].rstrip("/")


def explain(exc: BaseException) -> str | None:
    """The one or two lines a person sees for an error: what went wrong and what to do; None
    for a bug, whose traceback they should see."""
    import httpx

    from descent.client import ApiError, NotSignedIn
    from descent.commands.specs import SpecFileError

    if isinstance(exc, httpx.TransportError):
        try:
            base = _api_base(exc.request.url)
        except RuntimeError:  # no request attached
            base = "the api"
        if isinstance(exc, httpx.ConnectError):
            return f'no Descent api at {base} — is "descent up" running? use --url or DESCENT_URL'
        return f"error: cannot reach {base}: {exc or type(exc).__name__}"
    if isinstance(exc, NotSignedIn):
        from descent.commands.client_cmds import not_signed_in

        return not_signed_in(_api_base(exc.url))
    if isinstance(exc, SpecFileError):
        return str(exc)
    if isinstance(exc, (ApiError, OSError, ValueError)):
        return f"error: {exc}"
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
