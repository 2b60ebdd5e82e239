"""``descent token create|list|revoke``: API tokens, on the database directly (like ``descent
migrate``).

``create`` prints the secret alone on stdout, once (``TOKEN=$(descent token create alice
--name ci)``), and what it is on stderr; only its SHA-256 and its first characters are stored.
``list`` never shows a secret.  Every change is written to the audit log as done by ``cli``."""

from __future__ import annotations

import argparse
import sys

from descent.commands.database import Refused, database_argument, existing_user, refusing, transaction, when
from descent.commands.formatting import table

MAX_NAME = 100
MAX_DAYS = 3650


def register(name: str, parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("create", help="create a token and print its secret (once)")
    p.add_argument("username", nargs="?", help="whose token (omit with --worker)")
    p.add_argument("--name", required=True, help="what the token is for (shown in lists)")
    p.add_argument("--expires-in-days", type=int, metavar="N", help=f"1-{MAX_DAYS} days (default: never expires)")
    p.add_argument("--worker", action="store_true", help="a worker token: may only report metrics, belongs to nobody")
    p = sub.add_parser("list", help="list tokens (never their secrets)")
    p.add_argument("username", nargs="?", help="only this user's tokens")
    p = sub.add_parser("revoke", help="revoke a token at once (it stays listed)")
    p.add_argument("id", type=int)
    for p in sub.choices.values():
        database_argument(p)


def run(args: argparse.Namespace) -> int:
    return refusing("descent token", _ACTIONS[args.action])(args)


def create(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from store.models import utcnow
    from store.repositories import audit
    from store.repositories import tokens as tokens_repo

    if args.worker == bool(args.username):
        raise Refused("name a user (`descent token create USERNAME --name NAME`) or pass --worker, not both")
    if not 0 < len(args.name.strip()) <= MAX_NAME:
        raise Refused(f"--name must have 1-{MAX_NAME} characters")
    if args.expires_in_days is not None and not 1 <= args.expires_in_days <= MAX_DAYS:
        raise Refused(f"--expires-in-days must be 1-{MAX_DAYS}")
    with transaction(args.database_url) as session:
        user = None
        if not args.worker:
            user = existing_user(session, args.username)
            if user.disabled:
                raise Refused(f"user {user.username} is disabled (`descent user enable {user.username}` first)")
        expires = utcnow() + timedelta(days=args.expires_in_days) if args.expires_in_days else None
        kind = "worker" if args.worker else "user"
        issued = tokens_repo.issue(session, name=args.name.strip(), user=user, kind=kind, expires_at=expires)
        audit.record(session, actor="cli", user_id=None, action="token.create", target=f"token {issued.row.prefix}",
                     detail={"name": issued.row.name, "kind": kind, "user": user.username if user else None})
        token_id, prefix = issued.row.id, issued.row.prefix
    whose = f"worker token {token_id}" if args.worker else f"token {token_id} of {args.username}"
    until = f", expires {when(expires)}" if expires else ""
    print(f"{whose} ({prefix}…{until}): shown this once, keep it now. "
          "Send it as `Authorization: Bearer <token>` or set DESCENT_TOKEN.", file=sys.stderr)
    print(issued.secret)
    return 0


def list_tokens(args: argparse.Namespace) -> int:
    from store.repositories import tokens as tokens_repo
    from store.repositories import users as users_repo

    with transaction(args.database_url, read_only=True) as session:
        user = existing_user(session, args.username) if args.username else None
        names = {u.id: u.username for u in users_repo.list_all(session)}
        rows = [[str(t.id), names.get(t.user_id, "-"), t.kind, t.name, t.prefix, when(t.created_at),
                 when(t.expires_at), when(t.last_used_at), when(t.revoked_at)]
                for t in tokens_repo.list_for(session, user)]
    print(table(["ID", "USER", "KIND", "NAME", "PREFIX", "CREATED", "EXPIRES", "LAST USED", "REVOKED"], rows))
    return 0


def revoke(args: argparse.Namespace) -> int:
    from store.repositories import audit
    from store.repositories import tokens as tokens_repo

    with transaction(args.database_url) as session:
        token = tokens_repo.get(session, args.id) if 0 < args.id <= 2**31 - 1 else None
        if token is None:
            raise Refused(f"no token {args.id} (`descent token list` shows them)")
        if token.revoked_at is not None:
            print(f"token {args.id} ({token.prefix}…) was already revoked at {when(token.revoked_at)}")
            return 0
        tokens_repo.revoke(session, token)
        audit.record(session, actor="cli", user_id=None, action="token.revoke", target=f"token {token.prefix}")
    print(f"token {args.id} ({token.prefix}…) revoked")
    return 0


_ACTIONS = {"create": create, "list": list_tokens, "revoke": revoke}
