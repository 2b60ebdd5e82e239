"""Metric request bodies, and the response shapes (declared once in ``core.metrics``, where the
client reads them too)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.metrics import (
    MAX_NAME_LENGTH,
    BestPublic,
    CompareExperiment,
    ComparePublic,
    SeriesPublic,
    SummaryRow,
)
from core.spec.text import NulFreeStr


class MetricsPublic(BaseModel):
    series: dict[str, SeriesPublic]


class PointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: NulFreeStr = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    step: int = Field(ge=0, le=2**62)
    epoch: int | None = Field(None, ge=0, le=2**31 - 1)
    value: float | None = Field(description="null for a non-finite value")
    wall_time: float | None = Field(None, ge=0, le=1e11, allow_inf_nan=False, description="Unix seconds; default now")


class PointsCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: list[PointCreate] = Field(max_length=100_000)


class PointsAccepted(BaseModel):
    inserted: int = Field(description="points that were new (a re-sent batch inserts 0)")


__all__ = [
    "BestPublic", "CompareExperiment", "ComparePublic", "MetricsPublic", "PointCreate", "PointsAccepted",
    "PointsCreate", "SeriesPublic", "SummaryRow",
]
