"""``/studies``: hyperparameter searches whose trials are experiments (``api.studies.service``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth.principal import ProjectFilter, UserDep
from api.deps import EnqueuerDep, SessionDep, SettingsDep
from api.errors import responses
from api.studies import service
from api.studies.schemas import StudyCreate, StudyPage, StudyPublic, TournamentCreate

router = APIRouter(prefix="/studies", tags=["studies"])


@router.post("", status_code=201, response_model=StudyPublic, responses=responses(401, 403, 429))
def create_study(body: StudyCreate, principal: UserDep, session: SessionDep, settings: SettingsDep,
                 enqueue: EnqueuerDep) -> StudyPublic:
    """Validate (the base spec on its split, the objective's metric, every grid point's spec),
    store, and start the first trials (up to `budget.parallel`).  The api then keeps it going:
    new trials as others finish, until the space or the budget is spent."""
    return service.create(session, settings, enqueue, principal, body)


@router.post("/tournament", status_code=201, response_model=StudyPublic, responses=responses(401, 403, 429))
def create_tournament(body: TournamentCreate, principal: UserDep, session: SessionDep, settings: SettingsDep,
                      enqueue: EnqueuerDep) -> StudyPublic:
    """The solver tournament: a grid of solvers × log-spaced learning rates, ASHA pruning by default."""
    return service.create_tournament(session, settings, enqueue, principal, body)


@router.get("", response_model=StudyPage, responses=responses(401, 403))
def list_studies(principal: UserDep, session: SessionDep, project_id: ProjectFilter = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50,
                 offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> StudyPage:
    """Newest first, with trial counts and the best trial (no trial list)."""
    return service.list_page(session, principal, project_id=project_id, limit=limit, offset=offset)


@router.get("/{study_id}", response_model=StudyPublic, responses=responses(401, 403, 404))
def get_study(study_id: int, principal: UserDep, session: SessionDep) -> StudyPublic:
    """A study with every trial, the best one and parameter importance."""
    return service.get(session, principal, study_id)


@router.post("/{study_id}/cancel", response_model=StudyPublic, responses=responses(401, 403, 404, 409))
def cancel_study(study_id: int, principal: UserDep, session: SessionDep) -> StudyPublic:
    """Stop the study: no new trials, the live ones cancelled."""
    return service.cancel(session, principal, study_id)
