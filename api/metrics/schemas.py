from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.spec.text import NulFreeStr

DIRECTION = "true: the largest value is the best (accuracy, r2, ...); false: the smallest (losses)"


class SeriesPublic(BaseModel):
    steps: list[int]
    values: list[float | None]
    higher_is_better: bool = Field(description=DIRECTION)


class MetricsPublic(BaseModel):
    series: dict[str, SeriesPublic]


class PointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: NulFreeStr = Field(min_length=1, max_length=128)
    step: int = Field(ge=0, le=2**62)
    epoch: int | None = Field(None, ge=0, le=2**31 - 1)
    value: float | None = Field(description="null for a non-finite value")
    wall_time: float | None = Field(None, ge=0, le=1e11, allow_inf_nan=False, description="Unix seconds; default now")


class PointsCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: list[PointCreate] = Field(max_length=100_000)


class PointsAccepted(BaseModel):
    inserted: int = Field(description="points that were new (a re-sent batch inserts 0)")


class SummaryRow(BaseModel):
    experiment_id: int
    name: str
    count: int
    best_value: float | None
    best_step: int | None
    final_value: float | None
    final_step: int
    time_to_best_s: float | None = Field(description="seconds from the metric's first point to its best")
    higher_is_better: bool = Field(description=DIRECTION)


class BestPublic(BaseModel):
    """One experiment's best value of one metric (from its stored summary)."""

    name: str
    value: float
    step: int
    higher_is_better: bool = Field(description=DIRECTION)


class CompareExperiment(BaseModel):
    id: int
    name: str
    status: str
    series: dict[str, SeriesPublic]


class ComparePublic(BaseModel):
    experiments: list[CompareExperiment]
    summary: list[SummaryRow]
