"""What ``descent up`` needs before it serves, so that two commands still give a working CLI
and dashboard with no manual step (run by ``descent user bootstrap-local`` in a child, so
``up`` itself never imports the server):

- on an instance with no users, an admin named ``admin`` with a random password nobody sees
  (``descent user set-password admin`` sets one);
- an API token for the first enabled admin, in ``<data>/admin.token`` (0600) and in the user's
  token file for each base url (``descent.credentials``) unless a token saved there still
  works — a data folder reset or a revoked token gets a new one;
- on every start, a one-time sign-in link for the dashboard, valid for a day."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from descent import credentials
from store.models import User
from store.repositories import audit, web_sessions
from store.repositories import tokens as tokens_repo
from store.repositories import users as users_repo

ADMIN = "admin"
TOKEN_NAME = "descent up"
TOKEN_FILE = credentials.ADMIN_TOKEN_FILE
LINK_LIFETIME = timedelta(hours=24)
LINK_PATH = "/api/v1/auth/link?code="


def bootstrap(session: Session, data_dir: str | Path, urls: list[str]) -> dict[str, Any]:
    """Do the above; returns ``{"user", "admin_created", "tokens_written", "login_link", "notes"}``
    (``notes``: lines for the person starting ``up``)."""
    notes: list[str] = []
    created = users_repo.count(session) == 0
    if created:
        user = users_repo.create(session, ADMIN, secrets.token_urlsafe(24), is_admin=True)
        audit.record(session, actor="cli", user_id=None, action="user.create", target=f"user {user.username}",
                     detail={"is_admin": True, "by": "descent up"})
        notes.append(f"descent up: created the admin user `{ADMIN}` (its password is random and unknown: "
                     f"`descent user set-password {ADMIN}` sets one)")
    admin = first_admin(session)
    if admin is None:
        notes.append("descent up: no enabled admin, so no token and no sign-in link "
                     "(`descent user create NAME --admin`, or `descent user enable NAME`)")
        return {"user": None, "admin_created": created, "tokens_written": [], "login_link": None, "notes": notes}
    written = ensure_tokens(session, admin, Path(data_dir) / TOKEN_FILE, urls)
    if written:
        notes.append(f"descent up: saved an API token of `{admin.username}` for the CLI in {', '.join(written)}")
    code = web_sessions.new_login_link(session, admin, LINK_LIFETIME)
    audit.record(session, actor="cli", user_id=None, action="login_link.create", target=f"user {admin.username}",
                 detail={"by": "descent up"})
    return {"user": admin.username, "admin_created": created, "tokens_written": written,
            "login_link": urls[0].rstrip("/") + LINK_PATH + code, "notes": notes}


def first_admin(session: Session) -> User | None:
    return next((u for u in users_repo.list_all(session) if u.is_admin and not u.disabled), None)


def ensure_tokens(session: Session, admin: User, token_file: Path, urls: list[str]) -> list[str]:
    """Make ``token_file`` and the token file's entry for each of ``urls`` hold a working token
    (the admin's, issued anew only when ``token_file``'s no longer works); returns the files it wrote."""
    stale = [url for url in urls if not _works(session, credentials.saved_token(url))]
    secret = token_file.read_text().strip() if token_file.is_file() else None
    written = []
    if not _works(session, secret):
        issued = tokens_repo.issue(session, name=TOKEN_NAME, user=admin)
        audit.record(session, actor="cli", user_id=None, action="token.create", target=f"token {issued.row.prefix}",
                     detail={"name": TOKEN_NAME, "kind": "user", "user": admin.username})
        secret = issued.secret
        credentials.write_secret_file(token_file, secret + "\n")
        written.append(str(token_file))
    for url in stale:
        path = str(credentials.save_token(url, secret))
    if stale:
        written.append(path)
    return written


def _works(session: Session, secret: str | None) -> bool:
    return bool(secret) and tokens_repo.find_valid(session, secret) is not None
