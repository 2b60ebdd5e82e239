"""What the race routes accept and answer.  The race itself is ``core.lab.race.RaceSpec``; the
functions it runs on are ``core.lab.functions``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.lab.functions import FunctionName
from core.lab.race import EXAMPLE_RACE, RaceSpec
from core.statuses import LabStatus


class RaceCreate(RaceSpec):
    """A race: a function, a start, a number of steps and up to eight solver configurations."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{**EXAMPLE_RACE, "project_id": 1}]})

    project_id: int | None = Field(None, ge=1, le=2**31 - 1,
                                   description="The project it belongs to (you must be an editor there); default "
                                               "your first project where you are one.")


class RacePublic(BaseModel):
    """One race: its request, where the lab worker is with it and, once done, every racer's run."""

    id: int = Field(description="The race's id (GET /races/{id}).")
    project_id: int = Field(description="The project it belongs to.")
    status: LabStatus
    spec: RaceSpec = Field(description="The request with every default filled in (start, labels, scheduler "
                                       "lengths derived from the steps).")
    result: dict[str, Any] | None = Field(None, description=(
        "Once done: `racers` (per racer, in the request's order: `label`, `solver`, `trajectory` ([x, y] per point, "
        "the start first: steps + 1 points, fewer when it diverged), `loss` (the function at each point), `lr` (the "
        "learning rate of each step), `diverged`, `error` (why it could not run, or null)), `grid` (`xs`, `ys` and "
        "`values`: the function on a grid over its plotting bounds, row j at ys[j]), `function`, `start`, `steps` "
        "and `compute_s` (the lab worker's seconds). Null before, and in lists."))
    error: str | None = Field(description="Why it failed (failed only).")
    created_at: datetime = Field(description="When it was asked for.")
    finished_at: datetime | None = Field(description="When it was done or failed.")
    warning: str | None = Field(None, description="Set when it was accepted but will wait: no lab worker has been "
                                                  "seen.")


class RaceList(BaseModel):
    """The newest races of the caller's projects, without their results."""

    items: list[RacePublic] = Field(description="Newest first; `result` is null (GET /races/{id} has it).")


class MinimumPublic(BaseModel):
    """A known minimum of a test function."""

    x: float = Field(description="Its x.")
    y: float = Field(description="Its y.")
    value: float = Field(description="The function's value there.")


class RaceFunctionPublic(BaseModel):
    """A 2-D test function a race can run on."""

    name: FunctionName
    title: str = Field(description="Its name in words.")
    formula: str = Field(description="f(x, y), in plain text.")
    start: tuple[float, float] = Field(description="The start point a race defaults to.")
    bounds: tuple[float, float, float, float] = Field(description="[x_min, x_max, y_min, y_max] of its contour "
                                                                  "plot.")
    minima: list[MinimumPublic] = Field(description="Its known minima (empty when it is unbounded below).")
    global_minima: bool = Field(description="Whether the minima listed are its global ones.")
    saddles: list[tuple[float, float]] = Field(description="Its known saddle points.")
    note: str = Field(description="What the function tests, in a sentence.")


class RaceFunctionList(BaseModel):
    """Every test function a race can run on."""

    items: list[RaceFunctionPublic] = Field(description="In the catalogue's order.")
