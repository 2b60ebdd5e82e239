"""What the landscape routes accept and answer.  The request is ``core.lab.landscape.LandscapeSpec``
with ``which`` as the api's ``ModelWhich`` (the weights ``GET /experiments/{id}/model`` serves)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.experiments.schemas import ModelWhich
from core.lab.landscape import LandscapeSpec
from core.statuses import LabStatus


class LandscapeCreate(LandscapeSpec):
    """A loss landscape around a succeeded run's weights along filter-normalised random directions
    (Li et al. 2018); every field has a default, so ``{}`` asks for a 25×25 plane."""

    which: ModelWhich = Field(ModelWhich.last, description="The weights at the centre: last (the run ended with) "
                                                           "or best (its best epoch's).")


class LandscapePublic(BaseModel):
    """One landscape: its request, where the lab worker is with it and, once done, its grids."""

    id: int = Field(description="The landscape's id (GET /landscapes/{id}).")
    experiment_id: int = Field(description="The run whose weights are its centre.")
    status: LabStatus
    spec: LandscapeCreate = Field(description="The request with every default filled in (points included).")
    result: dict[str, Any] | None = Field(description=(
        "Once done: `axis` (the coordinates along each axis, −span…span, 0 in the middle), `train` and `val` "
        "(`loss` and `accuracy`, or `loss`, `mse` and `r2` for regression: a list over α for dims=1, rows over "
        "β of columns over α for dims=2; null where the value is not finite), `centre` (those values at the run's "
        "weights), `start` (`coords` of the run's initial weights projected onto the directions, `left_out` the "
        "share of their distance ‖θ₀ − θ*‖ the directions do not span, `distance` that distance), `end` (the "
        "run's weights: the origin), `examples` (how many of each part were evaluated), `parameters` and "
        "`timings` (seconds; `per_point_ms`). Null before."))
    error: str | None = Field(description="Why it failed (failed only).")
    created_at: datetime = Field(description="When it was asked for.")
    finished_at: datetime | None = Field(description="When it was done or failed.")


class LandscapeList(BaseModel):
    """A run's landscapes, newest first."""

    items: list[LandscapePublic] = Field(description="Newest first.")
