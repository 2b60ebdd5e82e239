"""Dashboard sessions and one-time login links; both keep only the SHA-256 of their secret."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from core.auth import token_hash
from store.models import LoginLink, User, WebSession, utcnow


def start(session: Session, user: User, lifetime: timedelta) -> tuple[str, WebSession]:
    """A new session for ``user``: (the cookie's secret, the row with its CSRF token).  The
    user's expired sessions go now, so the table holds live sessions only."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    session.execute(delete(WebSession).where(WebSession.user_id == user.id, WebSession.expires_at <= now))
    row = WebSession(id=token_hash(secret), user_id=user.id, csrf_token=secrets.token_urlsafe(32), created_at=now,
                     expires_at=now + lifetime)
    session.add(row)
    session.flush()
    return secret, row


def find_valid(session: Session, secret: str, now: datetime | None = None) -> tuple[WebSession, User] | None:
    row = session.execute(
        select(WebSession, User).join(User, User.id == WebSession.user_id).where(WebSession.id == token_hash(secret))
    ).first()
    if row is None:
        return None
    web_session, user = row
    if web_session.expires_at <= (now or utcnow()) or user.disabled:
        return None
    return web_session, user


def end(session: Session, secret: str) -> None:
    session.execute(delete(WebSession).where(WebSession.id == token_hash(secret)))


def end_all(session: Session, user: User) -> None:
    """Sign ``user`` out everywhere (on a password change or when disabled)."""
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))


def new_login_link(session: Session, user: User, lifetime: timedelta) -> str:
    """A single-use sign-in secret for ``user`` (put it in a URL); the user's spent and expired
    links go now."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    session.execute(delete(LoginLink).where(LoginLink.user_id == user.id,
                                            or_(LoginLink.used_at.is_not(None), LoginLink.expires_at <= now)))
    session.add(LoginLink(id=token_hash(secret), user_id=user.id, created_at=now, expires_at=now + lifetime))
    session.flush()
    return secret


def use_login_link(session: Session, secret: str) -> User | None:
    """The user of a live, unused link, marking it used; None otherwise (used, expired, unknown)."""
    now = utcnow()
    used = session.execute(
        update(LoginLink).where(LoginLink.id == token_hash(secret), LoginLink.used_at.is_(None),
                                LoginLink.expires_at > now).values(used_at=now).returning(LoginLink.user_id)
    ).first()
    if used is None:
        return None
    user = session.get(User, used[0])
    return None if user is None or user.disabled else user
