from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, RootModel, ValidationError, WrapSerializer, WrapValidator

from api.metrics.schemas import BestPublic
from core.spec import ExperimentSpec
from core.statuses import Status

# The body of POST /experiments is the shared spec itself: solver/scheduler/architecture are
# discriminated unions built from the catalogs, so every field is validated with its bounds.
ExperimentCreate = ExperimentSpec


def _as_stored(value: Any, handler: Any) -> Any:
    """A stored spec read back as an ``ExperimentSpec``; one stored by an older version that the
    current rules reject is served as it was stored, never as an error."""
    try:
        return handler(value)
    except ValidationError:
        return value


def _dump(value: Any, handler: Any) -> Any:
    return value if isinstance(value, dict) else handler(value)


StoredSpec = Annotated[ExperimentSpec, WrapValidator(_as_stored), WrapSerializer(_dump)]


class ExperimentOverrides(RootModel[dict[str, Any]]):
    """Parts of an experiment spec to change in a clone, merged into the source's spec: a section
    whose ``name`` changes is replaced, otherwise its fields are merged."""


class ExperimentPublic(BaseModel):
    id: int
    name: str
    status: Status
    spec: StoredSpec = Field(description="The experiment as it was stored: the submitted spec with every "
                                         "default and derived value (loss, scheduler lengths) filled in.")
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
