"""Making API tokens: a user holds at most ``DESCENT_MAX_TOKENS_PER_USER`` live ones.

Past it the answer is 409, not 429: waiting does not free a place (tokens last until revoked
or expired), revoking one does, so the caller is told to do that."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from api.auth.principal import Principal
from api.errors import Conflict, Forbidden
from api.tokens.schemas import TokenCreate, TokenCreated, TokenPublic
from core.settings import Settings
from store.models import ApiToken, User, utcnow
from store.repositories import audit
from store.repositories import tokens as repo
from store.repositories import users as users_repo


def to_public(token: ApiToken, username: str | None) -> TokenPublic:
    return TokenPublic(id=token.id, name=token.name, kind=token.kind, prefix=token.prefix, username=username,
                       created_at=token.created_at, expires_at=token.expires_at, last_used_at=token.last_used_at,
                       revoked_at=token.revoked_at)


def check_token_count(session: Session, settings: Settings, user: User) -> None:
    """409 when ``user`` already holds the most live tokens a user may."""
    limit = settings.max_tokens_per_user
    live = repo.count_live(session, user.id)
    if live >= limit:
        raise Conflict(f"{user.username} holds {live} live API tokens, the most a user may ({limit}, "
                       "DESCENT_MAX_TOKENS_PER_USER): revoke some you no longer use (DELETE /tokens/{id}, "
                       "or `descent logout` on a machine you are done with), then create this one")


def create_token(session: Session, settings: Settings, principal: Principal, body: TokenCreate) -> TokenCreated:
    """A new token for the caller (or, for an admin, a worker token); its secret is in this answer only."""
    if body.kind == "worker" and not principal.is_admin:
        raise Forbidden("only an admin may create a worker token")
    user = users_repo.get(session, principal.user_id) if body.kind == "user" else None
    if user is not None:
        check_token_count(session, settings, user)
    expires = utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    issued = repo.issue(session, name=body.name, user=user, kind=body.kind, expires_at=expires)
    audit.record(session, actor=principal.actor, user_id=principal.user_id, action="token.create",
                 target=f"token {issued.row.prefix}", detail={"name": body.name, "kind": body.kind})
    public = to_public(issued.row, user.username if user else None)
    return TokenCreated(**public.model_dump(), token=issued.secret)
