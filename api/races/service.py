"""Races: validate (the spec, its schedulers against the race's length), store as ``queued`` in the
caller's project and send to the lab worker once the transaction commits (``worker.lab.race`` runs
it); read one with its result, list the recent ones."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.auth import access
from api.auth.principal import Principal
from api.deps import LabSender, after_commit
from api.errors import NotFound, PayloadError
from api.races.schemas import RaceCreate, RaceFunctionList, RaceFunctionPublic, RaceList, RacePublic
from core.lab.functions import FUNCTIONS
from core.lab.race import RaceSpec, resolve_race
from core.queue import LAB_QUEUE, RACE_TASK
from core.settings import Settings
from core.spec.experiment import SpecError
from store.models import Race
from store.repositories import audit
from store.repositories import races as repo
from store.repositories import workers as workers_repo

NO_LAB_WORKER = ("no lab worker has been seen: the race waits until one starts (`descent worker --queue lab`; with "
                 "compose: `docker compose up -d worker-lab`)")


def to_public(race: Race, *, with_result: bool = True, warning: str | None = None) -> RacePublic:
    return RacePublic(id=race.id, project_id=race.project_id, status=race.status, spec=race.spec,
                      result=race.result if with_result else None, error=race.error, created_at=race.created_at,
                      finished_at=race.finished_at, warning=warning)


def create(session: Session, settings: Settings, send: LabSender, principal: Principal, body: RaceCreate
           ) -> RacePublic:
    project = access.project_for_new(session, principal, body.project_id, ["body", "project_id"])
    spec = RaceSpec.model_validate(body.model_dump(exclude={"project_id"}))
    try:
        spec = resolve_race(spec)
    except SpecError as exc:
        raise PayloadError([(("body", *where), msg) for where, msg in exc.errors]) from None
    race = repo.create(session, project_id=project.id, created_by=principal.user_id,
                       spec=spec.model_dump(mode="json"))
    audit.record(session, actor=principal.actor, user_id=principal.user_id, project_id=project.id,
                 action="race.create", target=f"race {race.id}",
                 detail={"function": spec.function, "racers": len(spec.racers), "steps": spec.steps})
    race_id = race.id
    after_commit(session, lambda: send(RACE_TASK, race_id))
    alive = workers_repo.alive(session, LAB_QUEUE, workers_repo.alive_within_s(settings))
    return to_public(race, warning=None if alive else NO_LAB_WORKER)


def get(session: Session, principal: Principal, race_id: int) -> RacePublic:
    """The race with its result, if the caller may read its project (404 otherwise)."""
    race = repo.get(session, race_id)
    if race is None:
        raise NotFound(f"race {race_id} does not exist")
    access.require(principal, race.project_id, "viewer", f"race {race_id}")
    return to_public(race)


def recent(session: Session, principal: Principal, project_id: int | None, limit: int) -> RaceList:
    rows = repo.recent(session, access.visible_projects(principal, project_id), limit)
    return RaceList(items=[to_public(row, with_result=False) for row in rows])


def functions() -> RaceFunctionList:
    return RaceFunctionList(items=[RaceFunctionPublic.model_validate(f.public()) for f in FUNCTIONS.values()])
