"""Run a race (``core.lab.race``): every racer steps its own copy of the start point, a float64
tensor of two coordinates, with Descent's optimizers (``optim.factory.build_optimizer``) and
schedulers (``optim.schedulers.build_scheduler``, one epoch per step) on the test function
(``worker.lab.functions``), as the training engine steps a model: a closure that sets the
gradient and returns the objective, passed to ``step`` for the solvers that re-evaluate (L-BFGS,
BFGS, Newton…), called once before ``step`` for the others.  The closure evaluates the function
and its gradient in closed form on the two coordinates as floats (``VALUE_AND_GRAD``, checked
against autograd by the tests) rather than through autograd, which cost half of every step; for
Newton and Hessian-free, which differentiate the gradient once more (``optim.newton``), it
back-propagates through the torch formula as before.

The objective is the function, plus ``weight_decay / 2 · ‖θ‖²`` for a solver without a weight
decay of its own (as an experiment's, ``core.spec.experiment``); the loss curve is the function's
value at each point of the trajectory.  A racer whose coordinates leave ``DIVERGED_BEYOND`` or
stop being finite is stopped there and marked diverged; one whose configuration cannot be built
or whose step raises is marked with that error, and the others still run."""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from core.lab.race import MAX_RACERS, Racer, RaceSpec, resolve_race
from optim import catalog
from optim.factory import build_optimizer
from optim.newton import HessianFree, Newton
from optim.schedulers import build_scheduler
from worker.lab.functions import FORMULAS, VALUE_AND_GRAD, grid

# grid points per axis of the contour plot
GRID_POINTS = 120
# a coordinate past this has left every plot: the racer is stopped as diverged
DIVERGED_BEYOND = 1e8
# steps between divergence checks (a check costs about what a step does); the trajectory is cut at the
# first diverged point afterwards, so a racer only runs up to this many steps past it
CHECK_EVERY = 25
# solvers that take second derivatives of the closure's loss by double backward: the closed-form
# gradient has no graph, so their closure goes through autograd
DOUBLE_BACKWARD = (Newton, HessianFree)


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
    formula, value_and_grad = FORMULAS[spec.function], VALUE_AND_GRAD[spec.function]
    theta = torch.tensor(spec.start, dtype=torch.float64, requires_grad=True)
    # the points as floats (``tolist`` of a float64 tensor is exact): appending one costs a fifth of
    # writing a row of a tensor
    points: list[list[float]] = [theta.tolist()]
    lrs: list[float] = []
    error = None
    try:
        optimizer, scheduler, needs_closure = _build(spec, racer, theta)
        l2 = racer.l2_penalty()

        def autograd_closure() -> torch.Tensor:
            """The same objective through autograd, for the solvers in ``DOUBLE_BACKWARD``."""
            theta.grad = None  # optimizer.zero_grad(set_to_none=True) on the one parameter, ~10% of a step cheaper
            loss = formula(*theta.unbind())
            if l2:
                loss = loss + 0.5 * l2 * theta.square().sum()
            loss.backward()
            return loss.detach()

        def set_gradient() -> float:
            """The objective f(θ) + l2/2 · ‖θ‖² at θ, with its gradient ∇f(θ) + l2 · θ set as θ's grad:
            a fresh tensor each call, since a solver may keep the one it was given (L-BFGS's history)."""
            x, y = theta.tolist()
            loss, gx, gy = value_and_grad(x, y)
            if l2:
                loss += 0.5 * l2 * (x * x + y * y)
                gx += l2 * x
                gy += l2 * y
            theta.grad = torch.tensor((gx, gy), dtype=torch.float64)
            return loss

        def closed_form_closure() -> torch.Tensor:
            return torch.tensor(set_gradient(), dtype=torch.float64)

        closure = autograd_closure if isinstance(optimizer, DOUBLE_BACKWARD) else closed_form_closure
        lrs.append(float(optimizer.param_groups[0]["lr"]))
        for step in range(1, spec.steps + 1):
            if needs_closure:
                optimizer.step(closure)
            else:  # the loss is not needed: no tensor for it
                set_gradient()
                optimizer.step()
            points.append(theta.tolist())
            if step % CHECK_EVERY == 0 and _diverged_at(points[step - CHECK_EVERY + 1:]) is not None:
                break
            if scheduler is not None:
                scheduler.step_batch()
                scheduler.step_epoch(float(formula(*theta.detach().unbind())) if scheduler.interval == "metric"
                                     else None)
            lrs.append(float(optimizer.param_groups[0]["lr"]))
    except (ValueError, RuntimeError, ArithmeticError) as exc:
        error = str(exc)
    trajectory = torch.tensor(points, dtype=torch.float64)
    losses = formula(trajectory[:, 0], trajectory[:, 1])
    cut = _diverged_at(points, losses.tolist())
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


def _diverged_at(points: list[list[float]], losses: list[float] | None = None) -> int | None:
    """The index of the first of ``points`` outside ``±DIVERGED_BEYOND`` or not finite (or whose
    loss is not finite), or None."""
    for i, (x, y) in enumerate(points):
        # a NaN fails every comparison: ``not abs(nan) <= bound`` holds, as for ±inf
        if not (abs(x) <= DIVERGED_BEYOND and abs(y) <= DIVERGED_BEYOND) or (
                losses is not None and not math.isfinite(losses[i])):
            return i
    return None


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
