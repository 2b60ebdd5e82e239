"""``GET /audit``: who created, cancelled, deleted or changed what, and when (owners see their
projects' events, admins every event)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.auth import access
from api.auth.principal import UserDep
from api.deps import SessionDep
from api.errors import responses
from core.auth import at_least
from store.repositories import audit as repo

router = APIRouter(tags=["audit"])


class AuditEventPublic(BaseModel):
    """One recorded change."""

    id: int = Field(description="The event's id (grows with time).")
    at: datetime = Field(description="When it happened.")
    actor: str = Field(description="Who did it: a username, `worker` or `cli` (the command line on the database).")
    project_id: int | None = Field(description="The project it happened in (null for instance-wide changes).")
    action: str = Field(description="What was done: `experiment.create`, `experiment.cancel`, `member.set`, ...")
    target: str = Field(description="What it was done to: `experiment 12`, `user alice`, ...")
    detail: dict[str, Any] = Field(description="Particulars of the change (the new role, the token's name, ...).")


@router.get("/audit", response_model=list[AuditEventPublic], responses=responses(401, 403, 404))
def list_audit_events(
    principal: UserDep, session: SessionDep,
    project_id: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="only this project's events")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[AuditEventPublic]:
    """Newest first: the events of the projects the caller owns (an admin: every event)."""
    if project_id is not None:
        access.require(principal, project_id, "owner", f"project {project_id}")
        scope: list[int] | None = [project_id]
    elif principal.is_admin:
        scope = None
    else:
        scope = [p for p, role in principal.roles.items() if at_least(role, "owner")]
    return [AuditEventPublic.model_validate(e, from_attributes=True)
            for e in repo.page(session, project_ids=scope, limit=limit, offset=offset)]
