"""What a race is: up to eight solver configurations stepping from one start point on one 2-D test
function (``core.lab.functions``) for the same number of steps.

Each racer's ``solver`` and ``scheduler`` are the sections an experiment has
(``core.spec.experiment``: every catalogued solver with its hyperparameters and bounds, ``lr``
written ``base_lr``, a scheduler with its warm-up), so a racer is validated, and a misspelt name
answered with "did you mean", exactly as an experiment is.  A race is one run of ``steps`` optimizer
steps with one step per epoch: a scheduler's length fields left out derive from ``steps``
(:func:`resolve_race`), and a metric scheduler (ReduceLROnPlateau) watches the function's value.

Solvers that precondition per layer of a network (natural gradient, K-FAC: ``needs_model`` in the
catalog) have no network here and are refused; every first-order, zeroth-order and quasi-Newton or
Newton solver steps the two coordinates as it would a model's parameters.

Torch-free: the api validates a race with it and stores the resolved spec; the lab worker reads it
back (``worker.lab.race``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.lab.functions import FUNCTIONS, FunctionName
from core.spec.experiment import (
    ExperimentSpec,
    SchedulerSpec,
    SolverSpec,
    SpecError,
    _resolve_scheduler,
    has_own_weight_decay,
)
from core.spec.text import NulFreeStr
from optim import catalog

MAX_RACERS = 8
MAX_STEPS = 2000
# a coordinate beyond this is a start nobody can plot (the functions' bounds are within ±10)
MAX_COORDINATE = 1e6

EXAMPLE_RACE: dict[str, Any] = {
    "function": "rosenbrock", "start": [-1.5, 2.0], "steps": 500,
    "racers": [
        {"solver": {"name": "sgd", "base_lr": 0.001, "momentum": 0.9}},
        {"solver": {"name": "adam", "base_lr": 0.05}},
        {"label": "adam, cosine", "solver": {"name": "adam", "base_lr": 0.1},
         "scheduler": {"name": "cosineannealinglr"}},
        {"solver": {"name": "lbfgs", "base_lr": 1.0}},
    ],
}


class Racer(BaseModel):
    """One solver configuration in a race."""

    model_config = ConfigDict(extra="forbid")

    label: NulFreeStr | None = Field(None, min_length=1, max_length=60,
                                     description="Its name in the legend; default `<solver> lr=<base_lr>`.")
    solver: SolverSpec = Field(description="The optimizer, as an experiment's `solver` section: `name` (GET "
                                           "/solvers), `base_lr` and its hyperparameters.")
    scheduler: SchedulerSpec | None = Field(
        None, description="How the learning rate changes over the race's steps (GET /schedulers; one step is one "
                          "epoch); null keeps it constant.")

    @field_validator("solver")
    @classmethod
    def _steps_coordinates(cls, solver: Any) -> Any:
        entry = catalog.solver(solver.name)
        if entry.needs_model:
            raise ValueError(f"{solver.name} preconditions per layer of a network and a race steps two bare "
                             "coordinates: pick a first-order or quasi-Newton solver (lbfgs, bfgs, newton)")
        return solver

    @model_validator(mode="after")
    def _default_label(self) -> Racer:
        if self.label is None:
            self.label = f"{self.solver.name} lr={getattr(self.solver, 'base_lr', 1.0):g}"
        return self

    # the rules an experiment's sections follow (base_lr → lr, the L2 penalty of a solver without its own
    # weight decay, the scheduler's own arguments), shared rather than copied
    solver_hparams = ExperimentSpec.solver_hparams
    l2_penalty = ExperimentSpec.l2_penalty
    scheduler_hparams = ExperimentSpec.scheduler_hparams

    def _own_weight_decay(self) -> bool:
        return has_own_weight_decay(catalog.solver(self.solver.name))


Coordinate = Annotated[float, Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE, allow_inf_nan=False)]


class RaceSpec(BaseModel):
    """A race: the function, where every racer starts, how many steps each takes, and the racers."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_RACE]})

    function: FunctionName = Field(description="The 2-D test function (GET /races/functions).")
    start: tuple[Coordinate, Coordinate] | None = Field(
        None, description="[x, y] every racer starts from; default the function's own start.")
    steps: int = Field(500, ge=1, le=MAX_STEPS, description="Optimizer steps each racer takes.")
    racers: list[Racer] = Field(min_length=1, max_length=MAX_RACERS,
                                description=f"Up to {MAX_RACERS} solver configurations.")

    @model_validator(mode="after")
    def _default_start(self) -> RaceSpec:
        if self.start is None:
            self.start = FUNCTIONS[self.function].start
        return self


def resolve_race(spec: RaceSpec) -> RaceSpec:
    """A copy of ``spec`` with each racer's scheduler fields derived (one epoch per step, ``steps``
    epochs, the racer's ``base_lr``) and checked against each other, or ``SpecError`` with every
    problem at ``racers.<i>.scheduler[.<field>]``."""
    errors: list[tuple[tuple[str | int, ...], str]] = []
    racers = []
    for i, racer in enumerate(spec.racers):
        found: list[tuple[tuple[str | int, ...], str]] = []
        scheduler = racer.scheduler
        if scheduler is not None:
            scheduler = _resolve_scheduler(scheduler, spec.steps, 1, getattr(racer.solver, "base_lr", None), found)
        errors += [(("racers", i, *where), msg) for where, msg in found]
        racers.append(racer.model_copy(update={"scheduler": scheduler}))
    if errors:
        raise SpecError(errors)
    return spec.model_copy(update={"racers": racers})
