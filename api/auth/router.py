"""Signing in and out of the dashboard, the one-time links ``descent up`` prints, and ``/me``.

The session cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's
page sends it) and ``Secure`` when the api is reached over https."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from api.auth.principal import SESSION_COOKIE, Principal, UserDep, check_same_origin
from api.auth.schemas import LoginBody, MePublic, ProjectRole
from api.deps import SessionDep, SettingsDep
from api.errors import Unauthorized, responses
from api.limits.login import LoginAttempts, login_attempts
from core.auth import dummy_verify, verify_password
from store.models import User
from store.repositories import audit, web_sessions
from store.repositories import projects as projects_repo
from store.repositories import users as users_repo

router = APIRouter(tags=["auth"])
AttemptsDep = Annotated[LoginAttempts, Depends(login_attempts)]


def me(session: Session, user: User, csrf_token: str | None) -> MePublic:
    roles = projects_repo.roles_of(session, user.id)
    projects = [ProjectRole(id=p.id, name=p.name, role="owner" if user.is_admin else roles[p.id])
                for p in projects_repo.list_all(session) if user.is_admin or p.id in roles]
    return MePublic(id=user.id, username=user.username, is_admin=user.is_admin, projects=projects,
                    csrf_token=csrf_token)


def _start_session(session: Session, request: Request, response: Response, user: User, hours: float) -> str:
    secret, web_session = web_sessions.start(session, user, timedelta(hours=hours))
    response.set_cookie(SESSION_COOKIE, secret, max_age=int(hours * 3600), path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    audit.record(session, actor=user.username, user_id=user.id, action="session.start", target=f"user {user.username}")
    return web_session.csrf_token


@router.post("/auth/login", response_model=MePublic, responses=responses(401, 403))
def login(body: LoginBody, request: Request, response: Response, session: SessionDep, settings: SettingsDep,
          attempts: AttemptsDep) -> MePublic:
    """Check a username and password and start a dashboard session (sets the session cookie).
    Each user name and each address may try DESCENT_LOGIN_ATTEMPTS_PER_MINUTE times a minute (429)."""
    check_same_origin(request)
    attempts.check(request, body.username)
    user = users_repo.by_username(session, body.username)
    if user is None:
        dummy_verify()
    if user is None or user.disabled or not verify_password(body.password, user.password_hash):
        raise Unauthorized("wrong username or password")
    return me(session, user, _start_session(session, request, response, user, settings.session_hours))


@router.get("/auth/link", response_class=RedirectResponse, status_code=303, responses={
    303: {"description": "to the dashboard, signed in (or to its sign-in page when the link is spent)"}})
def use_login_link(code: Annotated[str, Query(max_length=200)], request: Request, session: SessionDep,
                   settings: SettingsDep, attempts: AttemptsDep) -> RedirectResponse:
    """Follow a one-time sign-in link (``descent up`` prints one): it signs the browser in once.
    It counts as a sign-in attempt from the caller's address (429 past the minute's)."""
    attempts.check(request)
    user = web_sessions.use_login_link(session, code)
    if user is None:
        return RedirectResponse("/#/login?error=link", status_code=303)
    redirect = RedirectResponse("/", status_code=303)
    _start_session(session, request, redirect, user, settings.session_hours)
    return redirect


@router.post("/auth/logout", status_code=204, responses=responses(401, 403))
def logout(request: Request, principal: UserDep, session: SessionDep) -> Response:
    """End this dashboard session (a token caller has nothing to end: revoke the token instead)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and principal.via == "session":
        web_sessions.end(session, cookie)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/me", response_model=MePublic, responses=responses(401, 403))
def get_me(principal: UserDep, session: SessionDep) -> MePublic:
    """Who is calling: the user, their projects and roles, and a session's CSRF token."""
    return me(session, _user(session, principal), principal.csrf_token)


def _user(session: Session, principal: Principal) -> User:
    user = users_repo.get(session, principal.user_id)
    if user is None:
        raise Unauthorized("this user no longer exists")
    return user
