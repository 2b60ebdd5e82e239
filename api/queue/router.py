"""``GET /queue``: how deep each worker queue is and why the caller's queued runs wait, from the
database alone, so it answers while the broker does not."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth.principal import UserDep
from api.deps import SessionDep, SettingsDep
from api.errors import responses
from api.queue import service
from api.queue.schemas import QueuePublic

router = APIRouter(prefix="/queue", tags=["queue"])


@router.get("", response_model=QueuePublic, responses=responses(401, 403))
def get_queue(principal: UserDep, session: SessionDep, settings: SettingsDep,
              limit: Annotated[int, Query(ge=1, le=1000, description="most waiting runs listed")] = 200
              ) -> QueuePublic:
    """Each queue's queued and running counts, alive and idle workers and oldest wait (every
    project's): `gpu` and `cpu` for trainings, `lab` for the optimizer lab's races and landscapes;
    and the queued runs of the caller's projects with their position and why they wait."""
    return service.overview(session, settings, principal, limit)
