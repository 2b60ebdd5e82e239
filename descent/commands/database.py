"""What the commands that work on the database directly share (``descent user``, ``descent
token``, like ``descent migrate``): ``--database-url``, a session on a database that must be
at the newest migration, and one line on stderr (exit 1) for whatever they refuse.

The server's packages (``core.settings``, ``store``) are imported only when such a command runs."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any


class Refused(Exception):
    """A command cannot do what it was asked; the message is the line it prints."""


def database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", help="default: DESCENT_DATABASE_URL, else the SQLite file in the data folder")


@contextmanager
def transaction(database_url: str | None, *, read_only: bool = False) -> Iterator[Any]:
    """A session on the configured database, committed when the block ends normally; refused
    (``Refused``) when the database does not exist, cannot be reached or is not migrated."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from core.settings import Settings
    from store.db import make_engine, make_sessionmaker, session_scope
    from store.db import read_only as mark_read_only
    from store.migrate import current_revision, head_revision

    url = database_url or Settings().resolved_database_url
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not os.path.exists(parsed.database):
        raise Refused(f"no database at {parsed.database}: run `descent migrate` first")
    engine = make_engine(url)
    try:
        try:
            found = current_revision(engine)
        except OperationalError as exc:
            raise Refused(f"cannot reach the database at {shown}: {str(exc.orig).strip().splitlines()[0]}") from None
        if found != head_revision():
            raise Refused(f"the database at {shown} is at migration {found or 'none'}, not {head_revision()}: "
                          "run `descent migrate` first")
        with session_scope(make_sessionmaker(engine)) as session:
            if read_only:
                mark_read_only(session)
            yield session
    finally:
        engine.dispose()


def refusing(prog: str, command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``command`` with a ``Refused`` printed as ``prog: message`` on stderr (exit 1)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except Refused as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 1

    return run


def new_password(env_var: str | None, *, check: Callable[[str], str | None]) -> str:
    """A password from ``$env_var``, else typed twice at a hidden prompt; refused when empty,
    mistyped or when ``check`` (``core.auth.password_problem``) names a problem."""
    if env_var:
        password = os.environ.get(env_var, "")
        if not password:
            raise Refused(f"${env_var} is not set or empty")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("password again: ") != password:
            raise Refused("the two passwords differ; nothing changed")
    problem = check(password)
    if problem:
        raise Refused(f"bad password: {problem}")
    return password


def existing_user(session: Any, username: str) -> Any:
    """The user named ``username``; refused when there is none."""
    from store.repositories import users as users_repo

    user = users_repo.by_username(session, username)
    if user is None:
        raise Refused(f"no user named {username!r} (`descent user list` shows them)")
    return user


def when(value: datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value else "-"
