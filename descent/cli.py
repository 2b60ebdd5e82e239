"""``descent`` — the command line.  Subcommands live in ``descent.commands.<name>`` and are
imported only when used, so ``descent ls`` never pays for torch."""

from __future__ import annotations

import argparse
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
}


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
    return int(import_module(args._module).run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
