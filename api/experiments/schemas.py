from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    WrapSerializer,
    WrapValidator,
    field_validator,
)

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


def _spec_field(name: str) -> Any:
    """The type of ``ExperimentSpec``'s field ``name`` with its limits, so an edit is held to
    the limits of a submission."""
    field = ExperimentSpec.model_fields[name]
    return Annotated[(field.annotation, *field.metadata)]


def _spec_description(name: str) -> str:
    return f"{ExperimentSpec.model_fields[name].description} Leave it out to keep it as it is."


class ExperimentUpdate(BaseModel):
    """``PATCH /experiments/{id}``: the fields to change; those left out stay as they are.  The
    spec's ``name``, ``tags`` and ``description`` change with them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "iris-adam-cosine-v2", "tags": ["tour", "baseline"], "description": "the baseline for the sweep"},
    ]})

    name: _spec_field("name") | None = Field(None, description=_spec_description("name"))  # type: ignore[valid-type]
    tags: _spec_field("tags") | None = Field(None, description=_spec_description("tags"))  # type: ignore[valid-type]
    description: _spec_field("description") | None = Field(None, description=_spec_description("description"))  # type: ignore[valid-type]

    @field_validator("name", "tags", "description", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null: leave the field out to keep it as it is")
        return value


class ExperimentPreview(BaseModel):
    """``POST /experiments?dry_run=true``: the experiment a submission would create, stored
    nowhere."""

    spec: ExperimentSpec = Field(description="The spec as it would be stored: every default and derived value "
                                             "(loss, scheduler lengths) filled in.")
    queue: str = Field(description="The worker queue it would be sent to: `gpu` or `cpu`.")
    project_id: int = Field(description="The project it would belong to: its split's.")
    warning: str | None = Field(None, description="What the submission would be told besides: no worker serving its "
                                                  "queue has been seen (it would wait until one starts).")


class ExperimentOverrides(RootModel[dict[str, Any]]):
    """Parts of an experiment spec to change in a clone, merged into the source's spec: a section
    whose ``name`` changes is replaced, otherwise its fields are merged."""


# a succeeded run of core.spec's example spec on a stratified iris split, as the api returns it
_EXAMPLE_SPEC = {
    "name": "iris-adam-cosine", "description": "MLP on iris, Adam, cosine decay after 20 warm-up steps",
    "split_id": 1,
    "architecture": {"name": "mlp", "depth": 2, "width": 32, "activation": "relu", "dropout": 0.0,
                     "normalization": "none"},
    "solver": {"name": "adam", "base_lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": 0.0,
               "amsgrad": False, "decoupled_weight_decay": False},
    "scheduler": {"name": "cosineannealinglr", "T_max": 30, "eta_min": 0.0001, "warmup_steps": 20,
                  "warmup_start_factor": 0.0},
    "training": {"epochs": 30, "batch_size": 16, "loss": "cross_entropy", "seed": 0, "grad_clip_norm": None,
                 "grad_clip_value": None, "gradient_noise": None, "precision": "fp32", "device": "auto"},
    "tags": ["tour", "iris"],
}
_EXAMPLE = {
    "id": 12, "project_id": 1, "name": "iris-adam-cosine", "status": "succeeded", "spec": _EXAMPLE_SPEC, "solver": "adam",
    "tags": ["tour", "iris"], "split_id": 1, "queue": "cpu", "progress": 1.0, "epoch": 30, "step": 210,
    "created_at": "2025-03-14T09:20:11.402157Z", "enqueued_at": "2025-03-14T09:20:11.403020Z",
    "started_at": "2025-03-14T09:20:11.981544Z", "finished_at": "2025-03-14T09:20:15.274903Z",
    "heartbeat_at": "2025-03-14T09:20:14.992310Z", "worker_host": "worker-7f9c2:41", "device": "cpu",
    "error": None, "warning": None, "stop_reason": None, "attempt": 1, "crashes": 0, "cancel_requested": False,
    "study_id": None, "trial_number": None,
}
_EXAMPLE_ITEM = {**_EXAMPLE, "best": {"name": "val/accuracy", "value": 0.9666666666666667, "step": 189,
                                      "higher_is_better": True}}


class ExperimentPublic(BaseModel):
    """One experiment (a training run) and where it is in its lifecycle: returned when it is
    created, cloned, read or cancelled.  ``progress``, ``epoch``, ``step`` and ``heartbeat_at``
    are updated by its worker every few seconds while it runs."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    id: int = Field(description="The experiment's id.")
    project_id: int = Field(description="The project it belongs to: its split's.")
    name: str = Field(description="Its name (the spec's `name`).")
    status: Status
    spec: StoredSpec = Field(description="The experiment as it was stored: the submitted spec with every "
                                         "default and derived value (loss, scheduler lengths) filled in. (A spec "
                                         "stored by an older version that today's rules reject is served as it "
                                         "was stored.)")
    solver: str = Field(description="The solver's catalog name (the spec's `solver.name`), which `?solver=` "
                                    "filters on.")
    tags: list[str] = Field(description="Its labels (the spec's `tags`), which `?tag=` filters on.")
    split_id: int = Field(description="The split it trains on.")
    queue: str = Field(description="The worker queue it was sent to: `gpu` or `cpu` (`training.device: auto` "
                                   "goes to `gpu` while a GPU worker is alive).")
    progress: float = Field(description="Fraction of its optimizer steps done, from 0 to 1, as of the last "
                                        "heartbeat; 1 once succeeded, left where it stopped otherwise.")
    epoch: int = Field(description="Epochs completed, as of the last heartbeat (0 before the first ends).")
    step: int = Field(description="Optimizer steps completed, as of the last heartbeat.")
    created_at: datetime = Field(description="When it was submitted (UTC).")
    enqueued_at: datetime | None = Field(
        description="When it was last sent to its queue (UTC): at submission, and again if the message may "
                    "have been lost.")
    started_at: datetime | None = Field(
        description="When a worker first took it (UTC); null while it has never started.")
    finished_at: datetime | None = Field(
        description="When it ended as succeeded, failed or cancelled (UTC); null while queued or running.")
    heartbeat_at: datetime | None = Field(
        description="When its worker last reported (UTC); null until a worker takes it.  A running run "
                    "silent too long is taken over by another worker.")
    worker_host: str | None = Field(
        description="The worker that took it last, as `hostname:pid`; null until a worker takes it.")
    device: str | None = Field(
        description="What it trains on: `cpu`, or `cuda:` and the GPU's name; null until a worker takes it.")
    error: str | None = Field(
        description="Why it failed (what went wrong and, where known, what to change); null unless its "
                    "status is failed.")
    warning: str | None = Field(
        description="What went wrong without stopping the run, while it lasts: no worker serving its queue seen "
                    "when it was submitted (cleared once a worker takes it), its training process killed and "
                    "trained again, or a checkpoint its worker could not write, naming the file, the operating system's error (`no space left on device "
                    "(ENOSPC)`) and what to do.  Training goes on, and the warning is cleared once a later write "
                    "succeeds; null when all is well.")
    stop_reason: str | None = Field(
        None, description="Why a succeeded run ended before its last epoch: early stopping, naming the metric, its "
                          "best value and that epoch; null when it trained every epoch.")
    attempt: int = Field(
        description="How many times a worker has taken it: 0 while queued, 1 on its first run, more after a "
                    "takeover (which resumes from the last checkpoint).")
    crashes: int = Field(
        description="How many times its training process died without an outcome (killed by the operating system, "
                    "most often for memory, or crashed); each is trained again from the last checkpoint until "
                    "DESCENT_MAX_ATTEMPTS, when the run fails saying why.")
    study_id: int | None = Field(None, description="The study (GET /studies/{id}) that made it as a trial; null "
                                                   "for an experiment submitted on its own.")
    trial_number: int | None = Field(None, description="Its number among its study's trials; null outside a study.")
    cancel_requested: bool = Field(
        description="True once a cancel was asked for: a queued run is cancelled at once, a running one "
                    "stops within a step.")


class ExperimentListItem(ExperimentPublic):
    """One experiment in a page of ``GET /experiments``; with ``?best=`` it carries its best value
    of a named metric."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE_ITEM]})

    best: BestPublic | None = Field(
        None, description="with ?best=: the best value of the first named metric the run has one of, else null")


class ExperimentPage(BaseModel):
    """A page of ``GET /experiments``: the matching experiments, newest first, and how many match
    in all."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"items": [_EXAMPLE_ITEM], "total": 1, "limit": 50, "offset": 0},
    ]})

    items: list[ExperimentListItem] = Field(description="This page's experiments, newest first.")
    total: int = Field(description="How many experiments match the filters, over all pages.")
    limit: int = Field(description="The most items a page holds (`?limit=`).")
    offset: int = Field(description="How many matching experiments come before this page (`?offset=`).")


class ModelFormat(StrEnum):
    """How ``GET /experiments/{id}/model`` gives the trained model."""

    pt2 = "pt2"
    onnx = "onnx"
    state_dict = "state_dict"


class ModelWhich(StrEnum):
    """Which weights ``GET /experiments/{id}/model`` gives: the run's last, or its best epoch's."""

    last = "last"
    best = "best"
