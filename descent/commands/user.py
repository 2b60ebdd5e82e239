"""``descent user create|list|disable|enable|set-password``: users, on the database directly
(like ``descent migrate``), for the first admin and for recovery when nobody can sign in.

Passwords come from ``--password-env VAR`` or a hidden prompt typed twice, never from the
command line (it would stay in the shell's history and in ``ps``).  Disabling a user, or
changing their password, ends their dashboard sessions; a disabled user's tokens stop working.
Every change is written to the audit log as done by ``cli``."""

from __future__ import annotations

import argparse
import sys

from descent.commands.database import (
    Refused,
    database_argument,
    existing_user,
    new_password,
    refusing,
    transaction,
    when,
)
from descent.commands.formatting import table


def register(name: str, parser: argparse.ArgumentParser) -> None:
    visible = ("create", "list", "disable", "enable", "set-password")
    sub = parser.add_subparsers(dest="action", metavar="{" + ",".join(visible) + "}", required=True)
    p = sub.add_parser("create", help="create a user")
    p.add_argument("username")
    p.add_argument("--admin", action="store_true", help="an instance admin: owner of every project, manages users")
    _password_argument(p)
    p.add_argument("--if-missing", action="store_true", help="do nothing (exit 0) if the user exists")
    sub.add_parser("list", help="list users")
    for action, what in (("disable", "stop a user signing in (ends their sessions; their tokens stop working)"),
                         ("enable", "let a disabled user sign in again")):
        sub.add_parser(action, help=what).add_argument("username")
    p = sub.add_parser("set-password", help="set a user's password (ends their dashboard sessions)")
    p.add_argument("username")
    _password_argument(p)
    # `descent up` runs this in a child, so that `up` itself never imports the server
    p = sub.add_parser("bootstrap-local")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--url", action="append", required=True, help="base url (repeatable); the first is in the link")
    for p in sub.choices.values():
        database_argument(p)


def _password_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--password-env", metavar="VAR",
                   help="read the password from this environment variable (default: ask twice, hidden)")


def run(args: argparse.Namespace) -> int:
    return refusing("descent user", _ACTIONS[args.action])(args)


def create(args: argparse.Namespace) -> int:
    from core.auth import password_problem, username_problem
    from store.repositories import audit
    from store.repositories import users as users_repo

    problem = username_problem(args.username)
    if problem:
        raise Refused(f"bad username {args.username!r}: {problem}")
    # look first, then ask: a prompt must not hold the database's write lock
    with transaction(args.database_url, read_only=True) as session:
        exists = users_repo.by_username(session, args.username) is not None
    if exists:
        if args.if_missing:
            print(f"user {args.username} exists; nothing changed")
            return 0
        raise Refused(f"user {args.username} already exists (--if-missing to accept that)")
    password = new_password(args.password_env, check=password_problem)
    with transaction(args.database_url) as session:
        if users_repo.by_username(session, args.username) is not None:
            raise Refused(f"user {args.username} already exists")
        user = users_repo.create(session, args.username, password, is_admin=args.admin)
        audit.record(session, actor="cli", user_id=None, action="user.create", target=f"user {user.username}",
                     detail={"is_admin": user.is_admin})
    print(f"created {'admin' if args.admin else 'user'} {args.username}")
    return 0


def list_users(args: argparse.Namespace) -> int:
    from store.repositories import users as users_repo

    with transaction(args.database_url, read_only=True) as session:
        users = users_repo.list_all(session)
        rows = [[str(u.id), u.username, "yes" if u.is_admin else "", "yes" if u.disabled else "",
                 when(u.created_at)] for u in users]
    print(table(["ID", "USERNAME", "ADMIN", "DISABLED", "CREATED"], rows))
    return 0


def set_disabled(args: argparse.Namespace) -> int:
    from store.repositories import audit, web_sessions
    from store.repositories import users as users_repo

    disable = args.action == "disable"
    with transaction(args.database_url) as session:
        user = existing_user(session, args.username)
        users_repo.set_disabled(session, user, disable)
        if disable:
            web_sessions.end_all(session, user)
        audit.record(session, actor="cli", user_id=None, action=f"user.{args.action}", target=f"user {user.username}")
    print(f"user {args.username} {args.action}d")
    return 0


def set_password(args: argparse.Namespace) -> int:
    from core.auth import password_problem
    from store.repositories import audit, web_sessions
    from store.repositories import users as users_repo

    with transaction(args.database_url, read_only=True) as session:
        existing_user(session, args.username)
    password = new_password(args.password_env, check=password_problem)
    with transaction(args.database_url) as session:
        user = existing_user(session, args.username)
        users_repo.set_password(session, user, password)
        web_sessions.end_all(session, user)
        audit.record(session, actor="cli", user_id=None, action="user.set-password", target=f"user {user.username}")
    print(f"password of {args.username} set; their dashboard sessions have ended")
    return 0


def bootstrap_local(args: argparse.Namespace) -> int:
    import json

    from descent.commands.bootstrap import bootstrap

    with transaction(args.database_url) as session:
        result = bootstrap(session, args.data_dir, args.url)
    for note in result.pop("notes"):
        print(note, file=sys.stderr)
    print(json.dumps(result))
    return 0


_ACTIONS = {
    "create": create,
    "list": list_users,
    "disable": set_disabled,
    "enable": set_disabled,
    "set-password": set_password,
    "bootstrap-local": bootstrap_local,
}
