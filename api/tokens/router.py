"""A user's own API tokens (an admin also sees and revokes everyone's, and makes worker tokens)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.auth.principal import UserDep
from api.deps import SessionDep, SettingsDep
from api.errors import Forbidden, NotFound, responses
from api.tokens import service
from api.tokens.schemas import TokenCreate, TokenCreated, TokenPublic
from api.tokens.service import to_public
from store.repositories import audit
from store.repositories import tokens as repo
from store.repositories import users as users_repo

router = APIRouter(prefix="/tokens", tags=["tokens"])


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


@router.post("", status_code=201, response_model=TokenCreated, responses=responses(401, 403, 409))
def create_token(body: TokenCreate, principal: UserDep, session: SessionDep, settings: SettingsDep) -> TokenCreated:
    """A new token for the caller (or, for an admin, a worker token); its secret is in this answer only.
    A user holds at most DESCENT_MAX_TOKENS_PER_USER live tokens (409: revoke some first)."""
    return service.create_token(session, settings, principal, body)


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
