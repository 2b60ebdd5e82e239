"""What a loss landscape of a trained run is computed over (Li et al. 2018, "Visualizing the Loss
Landscape of Neural Nets", §4-5): the loss at θ* + α·δ (1-D) or θ* + α·δ + β·η (2-D), for α, β
on an evenly spaced grid over [−span, span], with θ* the run's stored weights and δ, η
filter-normalised Gaussian directions drawn from ``seed`` (``worker.lab.directions``).

The grid's middle point is θ* itself, so ``points`` is odd.  Losses are evaluated in eval mode
on at most ``train_examples`` of the train part and ``val_examples`` of the validation part; a
part no larger than that is taken whole and in order, which makes the centre's validation loss
the run's recorded ``val/loss`` of its last epoch (``which=last``).

Torch-free: the api validates a request with it, the lab worker reads the stored spec back."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# points per axis when the request leaves it out
DEFAULT_POINTS = {1: 31, 2: 25}
MIN_POINTS, MAX_POINTS = 5, 61
MAX_EXAMPLES = 5000
# the weights a finished run stores (``core.settings.Settings.model_path``'s ``which``)
WEIGHTS = ("last", "best")

EXAMPLE_LANDSCAPE: dict[str, Any] = {"dims": 2, "points": 25, "span": 1.0, "which": "last"}


class LandscapeSpec(BaseModel):
    """One landscape request; ``points`` left out is 31 for a line, 25 per axis for a plane."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_LANDSCAPE]})

    dims: int = Field(2, ge=1, le=2, description="1: the loss along one direction (a line); 2: over a plane "
                                               "spanned by two directions (a contour map).")
    points: int | None = Field(
        None, ge=MIN_POINTS, le=MAX_POINTS,
        description=f"Grid points per axis, odd so the run's weights are the middle one; default "
                    f"{DEFAULT_POINTS[1]} for dims=1, {DEFAULT_POINTS[2]} (a {DEFAULT_POINTS[2]}×{DEFAULT_POINTS[2]} "
                    f"grid) for dims=2.")
    span: float = Field(1.0, gt=0, le=10, allow_inf_nan=False,
                        description="α (and β) run over [−span, span]; 1 moves every filter by up to its own norm.")
    which: Literal[WEIGHTS] = Field("last", description="The weights at the centre: last (the run ended with) or "
                                                        "best (its best epoch's).")
    train_examples: int = Field(512, ge=1, le=MAX_EXAMPLES,
                                description="Train examples evaluated at every grid point (a seeded subset when "
                                            "the train part is larger; the whole part otherwise).")
    val_examples: int = Field(512, ge=1, le=MAX_EXAMPLES,
                              description="Validation examples evaluated at every grid point (the whole part "
                                          "when it is no larger, so the centre equals the recorded val/loss).")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seeds the random directions and the subsets.")

    @field_validator("points")
    @classmethod
    def _odd(cls, points: int | None) -> int | None:
        if points is not None and points % 2 == 0:
            raise ValueError(f"{points} is even; use an odd number so the run's weights are the grid's centre")
        return points

    @model_validator(mode="after")
    def _default_points(self) -> LandscapeSpec:
        if self.points is None:
            self.points = DEFAULT_POINTS[self.dims]
        return self

    @property
    def grid_points(self) -> int:
        """Points evaluated: ``points`` on a line, ``points²`` on a plane."""
        return self.points ** self.dims


def axis(spec: LandscapeSpec) -> list[float]:
    """The grid's coordinates along one axis: ``points`` evenly spaced values from −span to span,
    the middle one exactly 0."""
    half = spec.points // 2
    return [spec.span * i / half for i in range(-half, half + 1)]
