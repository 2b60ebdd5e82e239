from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.metrics.schemas import BestPublic
from core.spec import ExperimentSpec
from core.statuses import Status

# The body of POST /experiments is the shared spec itself: solver/scheduler/architecture are
# discriminated unions built from the catalogs, so every field is validated with its bounds.
ExperimentCreate = ExperimentSpec


class ExperimentPublic(BaseModel):
    id: int
    name: str
    status: Status
    spec: dict[str, Any]
    solver: str
    tags: list[str]
    split_id: int
    queue: str
    progress: float
    epoch: int
    step: int
    created_at: datetime
    enqueued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker_host: str | None
    device: str | None
    error: str | None
    attempt: int
    cancel_requested: bool


class ExperimentListItem(ExperimentPublic):
    best: BestPublic | None = Field(
        None, description="with ?best=: the best value of the first named metric the run has one of, else null")


class ExperimentPage(BaseModel):
    items: list[ExperimentListItem]
    total: int
    limit: int
    offset: int
