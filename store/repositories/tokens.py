"""API tokens: created with their secret shown once, found by the secret's hash, revoked by
setting ``revoked_at`` (the row stays, for the audit trail and ``token list``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.auth import new_token, token_hash, visible_prefix
from store.models import ApiToken, User, utcnow

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


def find_valid(session: Session, secret: str, now: datetime | None = None) -> tuple[ApiToken, User | None] | None:
    """The live token whose secret this is, with its (enabled) user; None for an unknown,
    revoked or expired token or a disabled user."""
    now = now or utcnow()
    row = session.execute(
        select(ApiToken, User).outerjoin(User, User.id == ApiToken.user_id).where(ApiToken.hash == token_hash(secret))
    ).first()
    if row is None:
        return None
    token, user = row
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    if token.kind == "user" and (user is None or user.disabled):
        return None
    return token, user


def needs_touch(token: ApiToken, now: datetime | None = None) -> bool:
    """Whether a use of ``token`` should be recorded (at most once per ``LAST_USED_RESOLUTION``)."""
    return token.last_used_at is None or (now or utcnow()) - token.last_used_at >= LAST_USED_RESOLUTION


def touch(session: Session, token: ApiToken, now: datetime | None = None) -> None:
    """Record a use of ``token`` now."""
    session.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now or utcnow()))


def get(session: Session, token_id: int) -> ApiToken | None:
    return session.get(ApiToken, token_id)


def list_for(session: Session, user: User | None = None, *, kind: str | None = None) -> list[ApiToken]:
    """Tokens of ``user`` (every user's when None), oldest first."""
    query = select(ApiToken).order_by(ApiToken.id)
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    if kind is not None:
        query = query.where(ApiToken.kind == kind)
    return list(session.scalars(query))


def revoke(session: Session, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
