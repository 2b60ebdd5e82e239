"""The solver tournament: every solver against every other on the same base experiment, each at
its own grid of learning rates, so each is compared at its best rather than at one shared rate.

A grid over ``solver.name``; each solver's ``when`` holds ``solver.base_lr`` log-spaced from
``lr_low`` to ``lr_high``.  ASHA prunes by default, so hopeless rates stop after a few epochs."""

from __future__ import annotations

from typing import Any

from core.studies.space import Objective, PrunerName, StudySpec

# The ten solvers of Hasty's Model Playground documentation, "Solvers & optimizers" (SGD, Adagrad,
# Adadelta, ASGD, Rprop, RMSprop, Adam, AdaMax, AdamW, Lion), under our catalog's names.
HASTY_SOLVERS = ("sgd", "adagrad", "adadelta", "asgd", "rprop", "rmsprop", "adam", "adamax", "adamw", "lion")


def tournament(base: dict[str, Any], solvers: list[str] | tuple[str, ...] | None = None, *,
               lr_low: float = 1e-5, lr_high: float = 1.0, points: int = 7,
               pruner: PrunerName = "asha", metric: str = "val/loss",
               name: str | None = None, parallel: int = 4, seed: int = 0, per_solver: bool = False) -> StudySpec:
    """A grid study over ``solvers`` (default :data:`HASTY_SOLVERS`) x ``points`` learning rates
    from ``lr_low`` to ``lr_high`` (log-spaced), optimising ``metric`` (its best epoch's value).
    ``per_solver``: the pruner judges each trial against its own solver's trials only
    (``pruner.group_by``), so every solver keeps its best trials, at more worker time (on digits
    0.76x of no pruning against 0.32x, docs/benchmarks.md)."""
    chosen = list(solvers if solvers is not None else HASTY_SOLVERS)
    lr = {"type": "float", "low": lr_low, "high": lr_high, "log": True, "points": points}
    space = {"solver.name": {"type": "categorical", "values": chosen,
                             "when": {s: {"solver.base_lr": dict(lr)} for s in chosen}}}
    return StudySpec(
        name=name or f"{base.get('name', 'experiment')} solver tournament",
        description=f"{len(chosen)} solvers x {points} learning rates from {lr_low:g} to {lr_high:g}",
        base=base, space=space, objective=Objective(metric=metric), strategy="grid",
        pruner={"name": pruner, "group_by": "solver.name" if per_solver else None}, budget={"parallel": parallel},
        seed=seed,
    )
