"""The caller of a request: a user (by API token or dashboard session) or a worker token.

- ``Authorization: Bearer dsc_…`` — an API token; no CSRF check (a browser never adds it).
- the ``descent_session`` cookie — a dashboard session; a state-changing request must also
  send the session's CSRF token in ``X-CSRF-Token`` and, when the browser says where it comes
  from (``Origin``), come from this server's own origin.
- neither — 401 with ``WWW-Authenticate: Bearer``, and nothing else said.

The token's ``last_used_at`` is written at most once a minute, in its own short transaction
after the response is sent: inside the request it would wait for the request's own write lock
on SQLite (and a failure to record a use must never fail or slow the request)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Query, Request
from sqlalchemy.orm import Session

from api.deps import SessionDep
from api.errors import Forbidden, Unauthorized
from core.auth import looks_like_token, same_secret
from store.db import session_scope
from store.repositories import projects as projects_repo
from store.repositories import tokens as tokens_repo
from store.repositories import web_sessions

log = logging.getLogger(__name__)
SESSION_COOKIE = "descent_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NO_CREDENTIALS = ("sign in: send `Authorization: Bearer <token>` (`descent login`, or `descent token create`), "
                  "or sign in to the dashboard")


@dataclass(frozen=True)
class Principal:
    """``kind``: ``user`` or ``worker``; ``roles``: project id → role (an admin's are implied)."""

    kind: str
    user_id: int | None = None
    username: str = ""
    is_admin: bool = False
    roles: dict[int, str] = field(default_factory=dict)
    via: str = "token"  # "token" | "session"
    csrf_token: str | None = None
    token_id: int | None = None

    @property
    def actor(self) -> str:
        return self.username if self.kind == "user" else "worker"

    def role_in(self, project_id: int) -> str | None:
        if self.kind != "user":
            return None
        return "owner" if self.is_admin else self.roles.get(project_id)


def authenticate(request: Request, session: Session, on_use: Callable[[tokens_repo.Caller], None] | None = None
                 ) -> Principal:
    """The caller; ``on_use`` is told of a token's use when it is due to be recorded."""
    header = request.headers.get("authorization")
    if header is not None:
        return _from_token(request, session, header, on_use)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return _from_session(request, session, cookie)
    raise Unauthorized(NO_CREDENTIALS)


def _from_token(request: Request, session: Session, header: str,
                on_use: Callable[[tokens_repo.Caller], None] | None) -> Principal:
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not looks_like_token(secret):
        raise Unauthorized("the Authorization header must be `Bearer dsc_…`", error="invalid_request")
    caller = tokens_repo.find_caller(session, secret)
    if caller is None:
        raise Unauthorized("this token is unknown, revoked or expired: create a new one (descent login)",
                           error="invalid_token")
    if on_use is not None and tokens_repo.needs_touch(caller.last_used_at):
        on_use(caller)
    if caller.user_id is None:
        return Principal(kind="worker", token_id=caller.token_id)
    return Principal(kind="user", user_id=caller.user_id, username=caller.username, is_admin=caller.is_admin,
                     roles=caller.roles, via="token", token_id=caller.token_id)


def _from_session(request: Request, session: Session, cookie: str) -> Principal:
    found = web_sessions.find_valid(session, cookie)
    if found is None:
        raise Unauthorized("your session has ended: sign in again")
    web_session, user = found
    if request.method not in SAFE_METHODS:
        check_same_origin(request)
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not same_secret(sent, web_session.csrf_token):
            raise Forbidden(f"missing or wrong {CSRF_HEADER} header (reload the page)")
    return Principal(kind="user", user_id=user.id, username=user.username, is_admin=user.is_admin,
                     roles=projects_repo.roles_of(session, user.id), via="session",
                     csrf_token=web_session.csrf_token)


def check_same_origin(request: Request) -> None:
    """Refuse a request a browser says comes from another origin (``Origin``, else ``Referer``)."""
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if referer is None:
            return
        parts = referer.split("/")
        origin = "/".join(parts[:3]) if len(parts) >= 3 else referer
    if origin != own:
        raise Forbidden(f"cross-origin request refused (from {origin[:100]})")


def record_use(factory, caller: tokens_repo.Caller) -> None:
    try:
        with session_scope(factory) as session:
            tokens_repo.touch(session, caller.token_id)
    except Exception:  # recording a use must never fail the request
        log.warning("could not record the use of token %s", caller.token_id, exc_info=True)


def _principal(request: Request, session: SessionDep, background: BackgroundTasks) -> Principal:
    factory = request.app.state.session_factory
    principal = authenticate(request, session, lambda caller: background.add_task(record_use, factory, caller))
    request.state.principal = principal
    return principal


def require_user(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    if principal.kind != "user":
        raise Forbidden("a worker token may only report metrics")
    return principal


def _admin(principal: Annotated[Principal, Depends(require_user)]) -> Principal:
    if not principal.is_admin:
        raise Forbidden("only an instance admin may do this")
    return principal


PrincipalDep = Annotated[Principal, Depends(_principal)]
ProjectFilter = Annotated[int | None, Query(ge=1, le=2**31 - 1, description="only this project's objects")]
UserDep = Annotated[Principal, Depends(require_user)]
AdminDep = Annotated[Principal, Depends(_admin)]
