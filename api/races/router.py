"""``/races``: solver configurations racing on a 2-D test function (``api.races.service``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth.principal import ProjectFilter, UserDep
from api.deps import LabSenderDep, SessionDep, SettingsDep
from api.errors import responses
from api.races import service
from api.races.schemas import RaceCreate, RaceFunctionList, RaceList, RacePublic

router = APIRouter(prefix="/races", tags=["races"])


@router.post("", status_code=201, response_model=RacePublic, responses=responses(401, 403))
def create_race(body: RaceCreate, principal: UserDep, session: SessionDep, settings: SettingsDep,
                send: LabSenderDep) -> RacePublic:
    """Store the race (queued) and send it to a lab worker, which steps every racer with Descent's
    optimizers and stores the trajectories; poll GET /races/{id}.  `warning` says when no lab
    worker is alive to run it."""
    return service.create(session, settings, send, principal, body)


@router.get("", response_model=RaceList, responses=responses(401, 403))
def list_races(principal: UserDep, session: SessionDep, project_id: ProjectFilter = None,
               limit: Annotated[int, Query(ge=1, le=200, description="At most this many.")] = 20) -> RaceList:
    """The newest races of your projects (their specs and statuses; the results are read one by one)."""
    return service.recent(session, principal, project_id, limit)


@router.get("/functions", response_model=RaceFunctionList, responses=responses(401, 403))
def list_race_functions(principal: UserDep) -> RaceFunctionList:
    """The 2-D test functions a race can run on: formula, default start, plotting bounds and known minima."""
    return service.functions()


@router.get("/{race_id}", response_model=RacePublic, responses=responses(401, 403, 404))
def get_race(race_id: int, principal: UserDep, session: SessionDep) -> RacePublic:
    """One race: poll it until `status` is done (every racer's trajectory is in `result`) or failed."""
    return service.get(session, principal, race_id)
