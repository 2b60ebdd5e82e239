"""Run a race (``core.lab.race``): every racer steps its own copy of the start point, a float64
tensor of two coordinates, with Descent's optimizers (``optim.factory.build_optimizer``) and
schedulers (``optim.schedulers.build_scheduler``, one epoch per step) on the test function
(``worker.lab.functions``), exactly as the training engine steps a model: a closure that zeroes
the gradient, evaluates the objective and back-propagates, passed to ``step`` for the solvers that
re-evaluate (L-BFGS, BFGS, Newton…), called once before ``step`` for the others.

The objective is the function, plus ``weight_decay / 2 · ‖θ‖²`` for a solver without a weight
decay of its own (as an experiment's, ``core.spec.experiment``); the loss curve is the function's
value at each point of the trajectory.  A racer whose coordinates leave ``DIVERGED_BEYOND`` or
stop being finite is stopped there and marked diverged; one whose configuration cannot be built
or whose step raises is marked with that error, and the others still run."""

from __future__ import annotations

import time
from typing import Any

import torch

from core.lab.race import MAX_RACERS, Racer, RaceSpec, resolve_race
from optim import catalog
from optim.factory import build_optimizer
from optim.schedulers import build_scheduler
from worker.lab.functions import FORMULAS, grid

# grid points per axis of the contour plot
GRID_POINTS = 120
# a coordinate past this has left every plot: the racer is stopped as diverged
DIVERGED_BEYOND = 1e8
# steps between divergence checks (a check costs about what a step does); the trajectory is cut at the
# first diverged point afterwards, so a racer only runs up to this many steps past it
CHECK_EVERY = 25


def run_race(job: dict[str, Any]) -> dict[str, Any]:
    """The race stored in ``job["spec"]``: each racer's trajectory (``steps + 1`` points, the start
    first, fewer when it diverged), loss and learning rate per point, and the function on a grid."""
    spec = resolve_race(RaceSpec.model_validate(job["spec"]))  # the api stores it resolved: a no-op then
    started = time.perf_counter()
    racers = [race_one(spec, racer) for racer in spec.racers]
    return {
        "function": spec.function,
        "start": list(spec.start),
        "steps": spec.steps,
        "racers": racers,
        "grid": grid(spec.function, GRID_POINTS),
        "compute_s": time.perf_counter() - started,
    }


def warm_up() -> float:
    """Run a two-step race with every solver a race can use, so that a lab worker's first race does
    not pay for importing torch, its compiler front end (an optimizer's first ``step``) and each
    optimizer's module (about 7 s of CPU, against well under a second for a warm 8 × 500 race).
    Returns the seconds it took."""
    started = time.perf_counter()
    names = [name for name, entry in catalog.SOLVERS.items() if not entry.needs_model]
    for first in range(0, len(names), MAX_RACERS):
        run_race({"spec": {"function": "booth", "steps": 2, "racers": [
            {"solver": {"name": name}, "scheduler": {"name": "cosineannealinglr"}} for name in names[first:first + MAX_RACERS]
        ]}})
    return time.perf_counter() - started


def race_one(spec: RaceSpec, racer: Racer) -> dict[str, Any]:
    """One racer's run: ``label``, ``trajectory`` ([x, y] per point), ``loss`` and ``lr`` per point,
    ``diverged`` and ``error`` (None, or why it could not run; then it holds the start only)."""
    formula = FORMULAS[spec.function]
    theta = torch.tensor(spec.start, dtype=torch.float64, requires_grad=True)
    trajectory = torch.empty(spec.steps + 1, 2, dtype=torch.float64)
    trajectory[0] = theta.detach()
    lrs: list[float] = []
    taken, error = 0, None
    try:
        optimizer, scheduler, needs_closure = _build(spec, racer, theta)
        l2 = racer.l2_penalty()

        def closure() -> torch.Tensor:
            theta.grad = None  # optimizer.zero_grad(set_to_none=True) on the one parameter, ~10% of a step cheaper
            loss = formula(*theta.unbind())
            if l2:
                loss = loss + 0.5 * l2 * theta.square().sum()
            loss.backward()
            return loss.detach()

        lrs.append(float(optimizer.param_groups[0]["lr"]))
        for step in range(1, spec.steps + 1):
            if needs_closure:
                optimizer.step(closure)
            else:
                closure()
                optimizer.step()
            trajectory[step] = theta.detach()
            taken = step
            if step % CHECK_EVERY == 0 and _diverged_at(trajectory[step - CHECK_EVERY + 1:step + 1]) is not None:
                break
            if scheduler is not None:
                scheduler.step_batch()
                scheduler.step_epoch(float(formula(*trajectory[step].unbind())) if scheduler.interval == "metric"
                                     else None)
            lrs.append(float(optimizer.param_groups[0]["lr"]))
    except (ValueError, RuntimeError, ArithmeticError) as exc:
        error = str(exc)
    trajectory = trajectory[:taken + 1]
    losses = formula(trajectory[:, 0], trajectory[:, 1])
    cut = _diverged_at(trajectory, losses)
    if cut is not None:  # the race ends before the first point outside the bound or not finite
        trajectory, losses = trajectory[:cut], losses[:cut]
    return {
        "label": racer.label,
        "solver": racer.solver.name,
        "trajectory": trajectory.tolist(),
        "loss": losses.tolist(),
        "lr": lrs[:len(trajectory)],
        "diverged": cut is not None,
        "error": error,
    }


def _diverged_at(points: torch.Tensor, losses: torch.Tensor | None = None) -> int | None:
    """The index of the first of ``points`` outside ``±DIVERGED_BEYOND`` or not finite (or whose
    loss is not finite), or None."""
    bad = ~(torch.isfinite(points).all(dim=1) & (points.abs() <= DIVERGED_BEYOND).all(dim=1))
    if losses is not None:
        bad |= ~torch.isfinite(losses)
    return int(bad.nonzero()[0]) if bool(bad.any()) else None


def _build(spec: RaceSpec, racer: Racer, theta: torch.Tensor):
    entry = catalog.solver(racer.solver.name)
    optimizer = build_optimizer([theta], entry.name, racer.solver_hparams())
    scheduler = None
    if racer.scheduler is not None:
        scheduler = build_scheduler(
            optimizer, racer.scheduler.name, racer.scheduler_hparams(),
            warmup_steps=racer.scheduler.warmup_steps, warmup_start_factor=racer.scheduler.warmup_start_factor,
            steps_per_epoch=1, epochs=spec.steps,
        )
    return optimizer, scheduler, entry.needs_closure
