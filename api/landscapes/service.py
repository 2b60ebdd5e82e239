"""Loss landscapes of succeeded runs: validate, reuse an identical one, else store as ``queued``
and send to the lab worker once the transaction commits (``worker.lab.landscape`` computes it)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.auth import access
from api.auth.principal import Principal
from api.deps import LabSender, after_commit
from api.errors import Conflict, NotFound
from api.experiments import service as experiments_service
from api.landscapes.schemas import LandscapeCreate, LandscapeList, LandscapePublic
from core.lab.landscape import LandscapeSpec
from core.queue import LANDSCAPE_TASK
from core.settings import Settings
from store.models import Landscape
from store.repositories import audit
from store.repositories import experiments as experiments_repo
from store.repositories import landscapes as repo


def to_public(landscape: Landscape) -> LandscapePublic:
    return LandscapePublic.model_validate(landscape, from_attributes=True)


def _refusal(settings: Settings, experiment, spec: LandscapeSpec) -> str | None:
    """Why the run cannot have this landscape now, with what to do; None when it can."""
    name = f"experiment {experiment.id}"
    if experiment.status in ("queued", "running"):
        return f"{name} is {experiment.status}: ask for its landscape once it has succeeded"
    if experiment.status != "succeeded":
        return f"{name} is {experiment.status}: a landscape needs a run that succeeded (clone it and train again)"
    if not settings.model_path(experiment.id, "state_dict", spec.which).is_file():
        if spec.which == "best":
            return f"{name} has no stored best weights (a run without a validation part has none): use which=last"
        return f"{name} stored no weights (an LR range test stores none): a landscape needs trained weights"
    return None


def create(session: Session, settings: Settings, send: LabSender, principal: Principal, experiment_id: int,
           body: LandscapeCreate) -> tuple[bool, LandscapePublic]:
    """``(created, landscape)``: the run's landscape of the same resolved spec when one is done or
    on its way (``created`` False), else a new one, queued and sent after commit."""
    experiment = experiments_service.load(session, principal, experiment_id, "editor")
    spec = LandscapeSpec.model_validate(body.model_dump(mode="json"))
    refusal = _refusal(settings, experiment, spec)
    if refusal is not None:
        raise Conflict(refusal)
    stored = spec.model_dump(mode="json")
    same = repo.find_same(session, experiment_id, stored)
    if same is not None:
        return False, to_public(same)
    landscape = repo.create(session, experiment_id=experiment_id, created_by=principal.user_id, spec=stored)
    audit.record(session, actor=principal.actor, user_id=principal.user_id, project_id=experiment.project_id,
                 action="landscape.create", target=f"experiment {experiment_id}",
                 detail={"landscape_id": landscape.id, "dims": spec.dims, "points": spec.points})
    landscape_id = landscape.id
    after_commit(session, lambda: send(LANDSCAPE_TASK, landscape_id))
    return True, to_public(landscape)


def list_for(session: Session, principal: Principal, experiment_id: int) -> LandscapeList:
    experiments_service.load(session, principal, experiment_id)
    return LandscapeList(items=[to_public(row) for row in repo.of_experiment(session, experiment_id)])


def get(session: Session, principal: Principal, landscape_id: int) -> LandscapePublic:
    """The landscape, if the caller may read its run (404 otherwise, as for the run)."""
    landscape = repo.get(session, landscape_id)
    experiment = experiments_repo.get(session, landscape.experiment_id) if landscape is not None else None
    if landscape is None or experiment is None:
        raise NotFound(f"landscape {landscape_id} does not exist")
    access.require(principal, experiment.project_id, "viewer", f"landscape {landscape_id}")
    return to_public(landscape)
