from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from api import idempotency
from api.auth.principal import ProjectFilter, UserDep
from api.deps import SessionDep, SettingsDep
from api.errors import responses
from api.idempotency import IdempotencyDep
from api.splits import service
from api.splits.schemas import SplitCreate, SplitPublic

router = APIRouter(prefix="/splits", tags=["splits"])


@router.post("", status_code=201, response_model=SplitPublic, responses={
    **idempotency.responses(401, 403),
    200: {"model": SplitPublic, "description": "The project already has this split (same dataset, strategy, "
                                               "fractions and seed): that one is returned, nothing is created.",
          **idempotency.responses(replayed=(200,))[200]},
})
def create_split(body: SplitCreate, principal: UserDep, session: SessionDep, settings: SettingsDep,
                 once: IdempotencyDep) -> JSONResponse:
    """Split a dataset into train/val/test; the index lists are frozen and stored.  Asking again
    for a split the project has returns it (200) rather than a copy; with an ``Idempotency-Key``,
    a repeat returns the first answer (201 if it created the split)."""
    def create() -> idempotency.Answer:
        split, created = service.create_split(session, settings, principal, body)
        return (201 if created else 200), split

    return once.run(create)


@router.get("", response_model=list[SplitPublic], responses=responses(401, 403))
def list_splits(
    principal: UserDep,
    session: SessionDep,
    project_id: ProjectFilter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[SplitPublic]:
    """Every split (sizes and class counts per part, not the index lists), oldest first."""
    return service.list_splits(session, principal, limit, offset, project_id)


@router.get("/{split_id}", response_model=SplitPublic, responses=responses(401, 403, 404))
def get_split(split_id: int, principal: UserDep, session: SessionDep) -> SplitPublic:
    """One split: its dataset, strategy, seed, and the size and class counts of each part."""
    return service.get_split(session, principal, split_id)


@router.delete("/{split_id}", status_code=204, responses=responses(401, 403, 404, 409))
def delete_split(split_id: int, principal: UserDep, session: SessionDep) -> Response:
    """Delete a split (409 while an experiment uses it: delete those first)."""
    service.delete_split(session, principal, split_id)
    return Response(status_code=204)
