"""What a study is: a base experiment spec, a search space over its dotted paths, an objective,
a strategy, a pruner and a budget.  Pure pydantic, no Optuna.

A search space maps a dotted spec path (``solver.base_lr``, ``architecture.width``,
``solver.betas.0``: a number indexes a list) to a parameter, discriminated by ``type``.  A
categorical's ``when`` holds a conditional subspace per value: a trial with ``solver.name=adam``
also has the parameters under ``when["adam"]`` and none of the other values'.  ``when`` keys are
JSON object keys, so a non-string value is keyed by its JSON text (``true``, ``null``, ``3``).

The tree is checked as a whole (:func:`check_space`): a path appears at most once along any
branch, nesting stays within :data:`MAX_DEPTH`, and a grid stays within :data:`MAX_TRIALS`."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from core.choices import choice
from core.metrics import higher_is_better
from core.spec.experiment import MonitorMode

MAX_DEPTH = 4  # levels of `when` nesting below the top level
MAX_TRIALS = 10_000  # the most trials a study (and so a grid) may have
DEFAULT_TRIALS = 20  # max_trials of a random or TPE study that names none
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.([A-Za-z_][A-Za-z0-9_]*|[0-9]+))*$")

CategoricalValue = str | int | float | bool | None


def when_key(value: CategoricalValue) -> str:
    """The ``when`` key of a categorical value: a string itself, anything else its JSON text."""
    return value if isinstance(value, str) else json.dumps(value)


class CategoricalParam(BaseModel):
    """One of a list of values; ``when`` adds a subspace for some of them."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["categorical"] = Field(description="A choice among `values`.")
    values: list[CategoricalValue] = Field(min_length=1, max_length=1000,
                                           description="The values to choose from (strings, numbers, booleans, null).")
    when: dict[str, Space] | None = Field(
        None, description="A conditional subspace per value, keyed by the value (non-strings by their JSON text): "
                          "its parameters exist only in trials that pick that value.")

    @model_validator(mode="after")
    def _check(self) -> CategoricalParam:
        keys = [when_key(v) for v in self.values]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"values repeat {repeated}")
        unknown = sorted(set(self.when or {}) - set(keys))
        if unknown:
            raise ValueError(f"`when` keys {unknown} are not among the values {keys}")
        return self

    def subspace(self, value: CategoricalValue) -> Space:
        return (self.when or {}).get(when_key(value), {})


class FloatParam(BaseModel):
    """A real number in [low, high], uniform or log-uniform."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["float"] = Field(description="A real number in [low, high].")
    low: float = Field(allow_inf_nan=False, description="The smallest value.")
    high: float = Field(allow_inf_nan=False, description="The largest value.")
    log: bool = Field(False, description="Sample (and space grid points) uniformly in log(value); needs low > 0.")
    points: int | None = Field(None, ge=2, le=MAX_TRIALS,
                               description="Grid points from low to high (log-spaced if `log`); the grid strategy "
                                           "needs it, the others ignore it.")

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0, got {self.low}")
        return self


class IntParam(BaseModel):
    """An integer in [low, high] on a step, uniform or log-uniform."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["int"] = Field(description="An integer in [low, high].")
    low: int = Field(description="The smallest value.")
    high: int = Field(description="The largest value; high - low must be a multiple of `step`.")
    log: bool = Field(False, description="Sample uniformly in log(value); needs low >= 1 and step 1.")
    step: int = Field(1, ge=1, description="Values are low, low + step, ... high.")
    points: int | None = Field(None, ge=2, le=MAX_TRIALS,
                               description="Grid points from low to high, rounded to the step (log-spaced if `log`); "
                                           "default: every value.")

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if (self.high - self.low) % self.step:
            raise ValueError(f"high - low ({self.high - self.low}) is not a multiple of step ({self.step})")
        if self.log and (self.low < 1 or self.step != 1):
            raise ValueError("a log scale needs low >= 1 and step 1")
        return self


Param = Annotated[CategoricalParam | FloatParam | IntParam, Field(discriminator="type")]
Space = dict[str, Param]
CategoricalParam.model_rebuild()


def check_space(space: Space) -> Space:
    """``space`` if its tree is sound, else ``ValueError`` naming the path: well-formed paths, no
    path twice along one branch (at a level and inside a ``when`` below it, or under two
    parameters of one level), at most :data:`MAX_DEPTH` nested ``when``."""
    if not space:
        raise ValueError("the search space is empty")
    _paths(space, frozenset(), 0)
    return space


def _paths(space: Space, above: frozenset[str], depth: int) -> set[str]:
    """Every path in ``space``'s subtree, checked against the paths ``above`` it on its branch."""
    if depth > MAX_DEPTH:
        raise ValueError(f"`when` nests deeper than {MAX_DEPTH} levels at {sorted(space)}")
    level = set(space)
    reach: dict[str, set[str]] = {}
    for path, param in space.items():
        if not _PATH.match(path):
            raise ValueError(f"{path!r} is not a dotted spec path (names, or list indices, joined by dots)")
        if path in above:
            raise ValueError(f"{path} appears twice along one branch")
        reach[path] = set()
        if isinstance(param, CategoricalParam):
            for key, sub in (param.when or {}).items():
                if not sub:
                    continue
                try:
                    reach[path] |= _paths(sub, above | level, depth + 1)
                except ValueError as e:
                    raise ValueError(f"{path} when {key}: {e}") from None
    seen: dict[str, str] = {}
    for path, paths in reach.items():
        for p in paths:
            if p in seen:
                raise ValueError(f"{p} appears under both {seen[p]} and {path}, so twice along one branch")
            seen[p] = path
    return level | set(seen)


_SPACE = TypeAdapter(Space)


def parse_space(data: Any) -> Space:
    """A search space from JSON data, validated as a whole."""
    return check_space(_SPACE.validate_python(data))


ObjectiveUse = choice("ObjectiveUse", ("best", "final"),
                      "Which of a trial's values counts: its best epoch's or its last epoch's.")


class Objective(BaseModel):
    """The metric a study optimises and which of its values counts."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(min_length=1, max_length=200, description="The metric to optimise, e.g. `val/accuracy`.")
    mode: MonitorMode | None = Field(
        None, description="min or max; default from the metric's name (accuracies up, losses down).")
    use: ObjectiveUse = Field("best", description="A trial's value: its best epoch's, or its last's.")

    @model_validator(mode="after")
    def _derive_mode(self) -> Objective:
        if self.mode is None:
            self.mode = "max" if higher_is_better(self.metric) else "min"
        return self

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        return "maximize" if self.mode == "max" else "minimize"


Strategy = choice("Strategy", ("grid", "random", "tpe"),
                  "How trials are proposed: grid (every grid point once), random, or tpe (Optuna's "
                  "tree-structured Parzen estimator).")
PrunerName = choice("PrunerName", ("none", "median", "asha"),
                    "How hopeless trials stop early: none, median (worse than the median of finished trials at "
                    "the same epoch) or asha (asynchronous successive halving).")


class PrunerSpec(BaseModel):
    """When to stop a trial early, judged on its per-epoch objective values."""

    model_config = ConfigDict(extra="forbid")

    name: PrunerName = Field(
        "none", description="none; median: stop a trial worse than the median of the finished ones at the same "
                            "epoch; asha: asynchronous successive halving (Li et al. 2020).")
    n_startup_trials: int = Field(5, ge=0, le=MAX_TRIALS,
                                  description="median: no pruning until this many trials have finished.")
    n_warmup_steps: int = Field(0, ge=0, description="median: no pruning before this epoch.")
    min_resource: int = Field(1, ge=1, description="asha: epochs of the first rung.")
    reduction_factor: int = Field(3, ge=2, le=100,
                                  description="asha: rung r is at min_resource * reduction_factor**r epochs; the "
                                              "top 1/reduction_factor of a rung go on.")
    group_by: str | None = Field(
        None, min_length=1, max_length=200,
        description="A categorical parameter of the space (e.g. `solver.name`): judge a trial only against the "
                    "trials with its value of it, so each value keeps its own best trials (a tournament's "
                    "per-solver map); none: against every trial.")


class Budget(BaseModel):
    """How much a study may run."""

    model_config = ConfigDict(extra="forbid")

    max_trials: int | None = Field(None, ge=1, le=MAX_TRIALS,
                                   description=f"Trials in all; default: the grid's size for grid, "
                                               f"{DEFAULT_TRIALS} otherwise.")
    parallel: int = Field(4, ge=1, le=1000, description="Trials running at once.")
    max_minutes: float | None = Field(None, gt=0, allow_inf_nan=False,
                                      description="Wall-clock limit of the whole study; none: no limit.")


EXAMPLE_STUDY: dict[str, Any] = {
    "name": "digits: adam vs sgd", "description": "which solver and learning rate for a small MLP",
    "base": {"name": "digits-mlp", "split_id": 1, "architecture": {"name": "mlp", "width": 64},
             "solver": {"name": "adam"}, "training": {"epochs": 20, "batch_size": 64}},
    "space": {"solver.name": {"type": "categorical", "values": ["adam", "sgd"], "when": {
        "adam": {"solver.base_lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}},
        "sgd": {"solver.base_lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
                "solver.momentum": {"type": "float", "low": 0.0, "high": 0.99}},
    }}},
    "objective": {"metric": "val/accuracy", "mode": "max", "use": "best"},
    "strategy": "tpe", "pruner": {"name": "asha"}, "budget": {"max_trials": 30, "parallel": 4},
}


class StudySpec(BaseModel):
    """A hyperparameter search: trials are experiments whose spec is ``base`` with the trial's
    parameters set (``core.studies.params.apply``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_STUDY]})

    name: str = Field(min_length=1, max_length=200, description="A name to list the study by.")
    description: str = Field("", max_length=10_000, description="Free text: what this study asks.")
    base: dict[str, Any] = Field(description="The experiment spec every trial starts from (as POST /experiments).")
    space: Space = Field(description="Dotted spec path -> the parameter searched there.")
    objective: Objective = Field(description="The metric to optimise.")
    strategy: Strategy = Field("tpe", description="grid: every grid point once; random; tpe: Optuna's "
                                                  "tree-structured Parzen estimator (Bergstra et al. 2011).")
    pruner: PrunerSpec = Field(default_factory=PrunerSpec, description="When to stop a trial early.")
    budget: Budget = Field(default_factory=Budget, description="How many trials, how many at once, how long.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seeds the sampler: the same trials give the same proposals.")

    @field_validator("space")
    @classmethod
    def _check_space(cls, space: Space) -> Space:
        return check_space(space)

    @model_validator(mode="after")
    def _check_grid_and_budget(self) -> StudySpec:
        if self.strategy == "grid":
            from core.studies.grid import grid_size  # grid reads this module's models

            size = grid_size(self.space)
            if size > MAX_TRIALS:
                raise ValueError(f"the grid has {size} points, more than {MAX_TRIALS}")
            if self.budget.max_trials is None:
                self.budget.max_trials = size
        elif self.budget.max_trials is None:
            self.budget.max_trials = DEFAULT_TRIALS
        group = self.pruner.group_by
        if group is not None and not isinstance(self.space.get(group), CategoricalParam):
            raise ValueError(f"pruner.group_by: {group!r} is not a categorical parameter at the top of the space "
                             f"(one of: {', '.join(p for p, v in self.space.items() if isinstance(v, CategoricalParam)) or 'none'})")
        return self
