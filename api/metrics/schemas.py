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
    """The answer of ``GET /experiments/{id}/metrics``: the experiment's metric series."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"series": {
        "val/accuracy": {"steps": [7, 14, 21, 28],
                         "values": [0.6333333333333333, 0.7666666666666667, 0.8, 0.9],
                         "higher_is_better": True, "diagnostic": False},
        "val/loss": {"steps": [7, 14, 21, 28], "values": [0.9113, 0.6248, 0.4807, 0.3921],
                     "higher_is_better": False, "diagnostic": False},
    }}]})

    series: dict[str, SeriesPublic] = Field(
        description="Each metric by name, sorted by name (those asked for with `?names=`, else all); a name "
                    "asked for that has no points is left out.")


class PointCreate(BaseModel):
    """One metric value at one step."""

    model_config = ConfigDict(extra="forbid")

    name: NulFreeStr = Field(min_length=1, max_length=MAX_NAME_LENGTH,
                             description="The metric's name, e.g. `train/loss` or `val/accuracy`; its last "
                                         "path component decides which way is better.")
    step: int = Field(ge=0, le=2**62, description="The step the value belongs to; a metric has one value per "
                                                  "step (a point at a step already stored is skipped).")
    epoch: int | None = Field(None, ge=0, le=2**31 - 1, description="The epoch the value belongs to, if any.")
    value: float | None = Field(description="The value; null for a non-finite value (stored as missing)")
    wall_time: float | None = Field(None, ge=0, le=1e11, allow_inf_nan=False,
                                    description="When the value was measured, in Unix seconds; default now")


class PointsCreate(BaseModel):
    """The body of ``POST /experiments/{id}/metrics``: points to record, of any metrics.  Sending a
    batch again is harmless: points already stored are skipped."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"points": [
        {"name": "train/loss", "step": 1, "epoch": 1, "value": 1.1482, "wall_time": 1741944012.31},
        {"name": "train/loss", "step": 2, "epoch": 1, "value": 1.0917, "wall_time": 1741944012.33},
        {"name": "val/accuracy", "step": 7, "epoch": 1, "value": 0.6333333333333333},
    ]}]})

    points: list[PointCreate] = Field(max_length=100_000,
                                      description="The points, at most 100 000, in any order.")


class PointsAccepted(BaseModel):
    """The answer of ``POST /experiments/{id}/metrics``: how many of the points were new."""

    inserted: int = Field(description="points that were new (a re-sent batch inserts 0)")


__all__ = [
    "BestPublic", "CompareExperiment", "ComparePublic", "MetricsPublic", "PointCreate", "PointsAccepted",
    "PointsCreate", "SeriesPublic", "SummaryRow",
]
