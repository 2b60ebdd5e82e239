"""A user's own API tokens (an admin also sees and revokes everyone's, and makes worker tokens)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.auth.principal import UserDep
from api.deps import SessionDep
from api.errors import Forbidden, NotFound, responses
from api.tokens.schemas import TokenCreate, TokenCreated, TokenPublic
from store.models import ApiToken, utcnow
from store.repositories import audit
from store.repositories import tokens as repo
from store.repositories import users as users_repo

router = APIRouter(prefix="/tokens", tags=["tokens"])


def to_public(token: ApiToken, username: str | None) -> TokenPublic:
    return TokenPublic(id=token.id, name=token.name, kind=token.kind, prefix=token.prefix, username=username,
                       created_at=token.created_at, expires_at=token.expires_at, last_used_at=token.last_used_at,
                       revoked_at=token.revoked_at)


@router.get("", response_model=list[TokenPublic], responses=responses(401, 403))
def list_tokens(principal: UserDep, session: SessionDep,
                everyone: Annotated[bool, Query(alias="all", description="every user's and worker's (admins)")] = False,
                ) -> list[TokenPublic]:
    """The caller's tokens, oldest first (with ``all=true``, an admin sees every token)."""
    if everyone and not principal.is_admin:
        raise Forbidden("only an admin may list every token")
    user = None if everyone else users_repo.get(session, principal.user_id)
    names = {u.id: u.username for u in users_repo.list_all(session)}
    return [to_public(t, names.get(t.user_id)) for t in repo.list_for(session, user)]


@router.post("", status_code=201, response_model=TokenCreated, responses=responses(401, 403))
def create_token(body: TokenCreate, principal: UserDep, session: SessionDep) -> TokenCreated:
    """A new token for the caller (or, for an admin, a worker token); its secret is in this answer only."""
    if body.kind == "worker" and not principal.is_admin:
        raise Forbidden("only an admin may create a worker token")
    user = users_repo.get(session, principal.user_id) if body.kind == "user" else None
    expires = utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    issued = repo.issue(session, name=body.name, user=user, kind=body.kind, expires_at=expires)
    audit.record(session, actor=principal.actor, user_id=principal.user_id, action="token.create",
                 target=f"token {issued.row.prefix}", detail={"name": body.name, "kind": body.kind})
    public = to_public(issued.row, user.username if user else None)
    return TokenCreated(**public.model_dump(), token=issued.secret)


@router.delete("/{token_id}", status_code=204, responses=responses(401, 403, 404))
def revoke_token(token_id: int, principal: UserDep, session: SessionDep) -> Response:
    """Revoke a token at once (it stays listed, marked revoked)."""
    token = repo.get(session, token_id)
    if token is None or (token.user_id != principal.user_id and not principal.is_admin):
        raise NotFound(f"token {token_id} does not exist")
    repo.revoke(session, token)
    audit.record(session, actor=principal.actor, user_id=principal.user_id, action="token.revoke",
                 target=f"token {token.prefix}")
    return Response(status_code=204)
