"""Loss landscapes of trained runs (``api.landscapes.service``): asked for and listed under their
run, read by id."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.auth.principal import UserDep
from api.deps import LabSenderDep, SessionDep, SettingsDep
from api.errors import responses
from api.landscapes import service
from api.landscapes.schemas import LandscapeCreate, LandscapeList, LandscapePublic

router = APIRouter(tags=["landscapes"])


@router.post("/experiments/{experiment_id}/landscapes", status_code=201, response_model=LandscapePublic,
             responses={**responses(401, 403, 404, 409),
                        200: {"model": LandscapePublic,
                              "description": "the run already has this landscape, done or on its way"}})
def create_landscape(experiment_id: int, body: LandscapeCreate, principal: UserDep, session: SessionDep,
                     settings: SettingsDep, send: LabSenderDep, response: Response) -> LandscapePublic:
    """The loss around a succeeded run's weights along one or two filter-normalised random
    directions (Li et al. 2018), computed by a lab worker and stored.  The same request again
    answers 200 with the stored (or queued) one instead of computing it twice; a run not
    succeeded, or without the weights asked for, is 409 saying what to do."""
    created, landscape = service.create(session, settings, send, principal, experiment_id, body)
    if not created:
        response.status_code = 200
    return landscape


@router.get("/experiments/{experiment_id}/landscapes", response_model=LandscapeList,
            responses=responses(401, 403, 404))
def list_landscapes(experiment_id: int, principal: UserDep, session: SessionDep) -> LandscapeList:
    """The run's landscapes with their results, newest first."""
    return service.list_for(session, principal, experiment_id)


@router.get("/landscapes/{landscape_id}", response_model=LandscapePublic, responses=responses(401, 403, 404))
def get_landscape(landscape_id: int, principal: UserDep, session: SessionDep) -> LandscapePublic:
    """One landscape: poll it until ``status`` is done (its grids are in ``result``) or failed."""
    return service.get(session, principal, landscape_id)
