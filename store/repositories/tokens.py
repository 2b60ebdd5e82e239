"""API tokens: created with their secret shown once, found by the secret's hash, revoked by
setting ``revoked_at`` (the row stays, for the audit trail and ``token list``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from core.auth import new_token, token_hash, visible_prefix
from store.models import ApiToken, Membership, User, utcnow
from store.repositories import valid_id

# last_used_at is written at most this often per token (a write per request would cost more than the lookup)
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``secret`` is shown once and never stored."""

    row: ApiToken
    secret: str


def issue(session: Session, *, name: str, user: User | None, kind: str = "user",
          expires_at: datetime | None = None) -> IssuedToken:
    secret = new_token()
    row = ApiToken(user_id=user.id if user else None, kind=kind, name=name, prefix=visible_prefix(secret),
                   hash=token_hash(secret), created_at=utcnow(), expires_at=expires_at)
    session.add(row)
    session.flush()
    return IssuedToken(row=row, secret=secret)


@dataclass(frozen=True)
class Caller:
    """Who a live token speaks for: its user (``user_id`` None for a worker token) and the
    user's roles by project id, read in one query of plain columns (no ORM objects), since
    every request pays for it."""

    token_id: int
    last_used_at: datetime | None
    user_id: int | None
    username: str
    is_admin: bool
    roles: dict[int, str]


def find_caller(session: Session, secret: str, now: datetime | None = None) -> Caller | None:
    """The caller of a live token; None for an unknown, revoked or expired token or a disabled user."""
    now = now or utcnow()
    rows = session.execute(
        select(ApiToken.id, ApiToken.kind, ApiToken.revoked_at, ApiToken.expires_at, ApiToken.last_used_at,
               User.id, User.username, User.is_admin, User.disabled, Membership.project_id, Membership.role)
        .outerjoin(User, User.id == ApiToken.user_id)
        .outerjoin(Membership, Membership.user_id == User.id)
        .where(ApiToken.hash == token_hash(secret))
    ).all()
    if not rows:
        return None
    token_id, kind, revoked_at, expires_at, last_used_at, user_id, username, is_admin, disabled = rows[0][:9]
    if revoked_at is not None or (expires_at is not None and expires_at <= now):
        return None
    if kind == "user" and (user_id is None or disabled):
        return None
    return Caller(token_id=token_id, last_used_at=last_used_at, user_id=user_id, username=username or "",
                  is_admin=bool(is_admin), roles={row[9]: row[10] for row in rows if row[9] is not None})


def find_valid(session: Session, secret: str, now: datetime | None = None) -> tuple[ApiToken, User | None] | None:
    """(token, user) rows of a live token (see :func:`find_caller`), else None."""
    caller = find_caller(session, secret, now)
    if caller is None:
        return None
    user = session.get(User, caller.user_id) if caller.user_id is not None else None
    return session.get(ApiToken, caller.token_id), user


def needs_touch(last_used_at: datetime | None, now: datetime | None = None) -> bool:
    """Whether a use should be recorded (at most once per ``LAST_USED_RESOLUTION``)."""
    return last_used_at is None or (now or utcnow()) - last_used_at >= LAST_USED_RESOLUTION


def touch(session: Session, token_id: int, now: datetime | None = None) -> None:
    """Record a use of token ``token_id`` now."""
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now or utcnow()))


def get(session: Session, token_id: int) -> ApiToken | None:
    return session.get(ApiToken, token_id) if valid_id(token_id) else None


def list_for(session: Session, user: User | None = None, *, kind: str | None = None) -> list[ApiToken]:
    """Tokens of ``user`` (every user's when None), oldest first."""
    query = select(ApiToken).order_by(ApiToken.id)
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    if kind is not None:
        query = query.where(ApiToken.kind == kind)
    return list(session.scalars(query))


def count_live(session: Session, user_id: int, now: datetime | None = None) -> int:
    """How many of the user's tokens are neither revoked nor expired."""
    now = now or utcnow()
    return session.scalar(select(func.count()).select_from(ApiToken).where(
        ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None),
        or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now))) or 0


def revoke(session: Session, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
