"""Strong-Wolfe line search shared by ``LBFGS`` and ``BFGS``.

Algorithms 3.5 and 3.6 of Nocedal & Wright, *Numerical Optimization* (2nd ed., 2006): a
bracketing phase that grows the step until an interval is known to hold a point satisfying
the strong Wolfe conditions

    f(x + t d) <= f(x) + c1 t g^T d            (sufficient decrease)
    |g(x + t d)^T d| <= c2 |g^T d|              (curvature)

followed by a zoom phase that shrinks that interval by safeguarded cubic interpolation.  The
trial points, safeguards and stopping rules follow minFunc's ``WolfeLineSearch`` (as torch's
L-BFGS does), so that a run takes the same steps as ``torch.optim.LBFGS``.

Losses are Python floats; slopes g^T d are 0-d tensors, and so is every step length computed
from them, exactly where ``torch.optim.LBFGS`` has tensors: ``x / t`` with a tensor ``t`` is
``t.reciprocal() * x`` in torch, which can round differently from a float division, and one
last-bit difference in a step length grows over a few iterations into a different run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

# evaluate(t) -> (loss at x + t d, flat gradient there); the caller restores x afterwards
Evaluate = Callable[[float], tuple[float, torch.Tensor]]
# a Python number, or a 0-d tensor where torch's line search has one
Scalar = float | torch.Tensor


@dataclass
class _Trial:
    """One evaluated point on the search line: step length, loss, gradient, slope g^T d."""

    t: float
    f: float
    g: torch.Tensor
    gtd: Scalar


def cubic_minimizer(
    t1: Scalar, f1: float, gtd1: Scalar, t2: Scalar, f2: float, gtd2: Scalar, bounds: tuple[Scalar, Scalar] | None = None
) -> Scalar:
    """Minimizer of the cubic through (t1, f1) and (t2, f2) with slopes gtd1 and gtd2, clipped to
    ``bounds`` (default: the interval between t1 and t2); the midpoint when the cubic has no
    minimizer (Nocedal & Wright eq. 3.59)."""
    low, high = bounds if bounds is not None else (min(t1, t2), max(t1, t2))
    d1 = gtd1 + gtd2 - 3 * (f1 - f2) / (t1 - t2)
    discriminant = d1**2 - gtd1 * gtd2
    if not discriminant >= 0:  # NaN too, as torch
        return (low + high) / 2.0
    d2 = discriminant.sqrt() if isinstance(discriminant, torch.Tensor) else math.sqrt(discriminant)
    # written from the point farther along the line so the formula stays well conditioned
    if t1 <= t2:
        t = t2 - (t2 - t1) * ((gtd2 + d2 - d1) / (gtd2 - gtd1 + 2 * d2))
    else:
        t = t1 - (t1 - t2) * ((gtd1 + d2 - d1) / (gtd1 - gtd2 + 2 * d2))
    return min(max(t, low), high)


def strong_wolfe(
    evaluate: Evaluate,
    d: torch.Tensor,
    t: Scalar,
    f: float,
    g: torch.Tensor,
    gtd: Scalar,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
    max_ls: int = 25,
) -> tuple[float, torch.Tensor, Scalar, int]:
    """Search along ``d`` from the current point (loss ``f``, gradient ``g``, slope ``gtd < 0``)
    starting with step ``t``.

    Returns ``(loss, gradient, step, evaluations)`` at the accepted step.  At most ``max_ls``
    evaluations after the first; if the bracket shrinks below ``tolerance_change`` (in units
    of ``max|d|``) the best point found so far is returned."""
    d_max = d.abs().max()
    start = _Trial(0.0, f, g.clone(memory_format=torch.contiguous_format), gtd)
    new = _probe(evaluate, d, t)
    evaluations = 1

    bracket, satisfied, iterations = _bracket(evaluate, d, start, new, c1, c2, max_ls)
    evaluations += iterations
    if satisfied:
        return bracket[0].f, bracket[0].g, bracket[0].t, evaluations
    if iterations == max_ls:
        # ran out of evaluations while still expanding: no zoom, keep the better endpoint
        best = bracket[0] if bracket[0].f <= bracket[-1].f else bracket[-1]
        return best.f, best.g, best.t, evaluations
    best, zoom_evaluations = _zoom(evaluate, d, d_max, start, bracket, c1, c2, tolerance_change, max_ls - iterations)
    return best.f, best.g, best.t, evaluations + zoom_evaluations


def _probe(evaluate: Evaluate, d: torch.Tensor, t: float) -> _Trial:
    f, g = evaluate(t)
    return _Trial(t, f, g, g.dot(d))


def _bracket(evaluate, d, start: _Trial, new: _Trial, c1, c2, max_ls) -> tuple[list[_Trial], bool, int]:
    """Expand the step until [previous, new] brackets an acceptable point, or ``new`` already
    satisfies the strong Wolfe conditions (then the list holds just it and the flag is True)."""
    previous = start
    for iteration in range(max_ls):
        armijo_fails = new.f > start.f + c1 * new.t * start.gtd
        if armijo_fails or (iteration > 1 and new.f >= previous.f):
            return [previous, _keep(new)], False, iteration
        if abs(new.gtd) <= -c2 * start.gtd:
            return [new], True, iteration
        if new.gtd >= 0:
            return [previous, _keep(new)], False, iteration
        # still descending: extrapolate, at least 1% beyond and at most 10x the current step
        t = cubic_minimizer(
            previous.t, previous.f, previous.gtd, new.t, new.f, new.gtd,
            bounds=(new.t + 0.01 * (new.t - previous.t), new.t * 10),
        )
        previous = _keep(new)
        new = _probe(evaluate, d, t)
    return [start, new], False, max_ls


def _zoom(evaluate, d, d_max, start: _Trial, bracket: list[_Trial], c1, c2, tolerance_change, budget):
    """Shrink ``bracket`` (two trials, one of them with the lower loss) until a point satisfies
    the strong Wolfe conditions, the interval is negligible, or ``budget`` evaluations are spent."""
    low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
    evaluations = 0
    stalled = False
    while evaluations < budget:
        a, b = bracket
        if abs(b.t - a.t) * d_max < tolerance_change:
            break
        t = cubic_minimizer(a.t, a.f, a.gtd, b.t, b.f, b.gtd)
        # a trial hugging an end of the interval makes little progress; on the second time in a
        # row (or when it lands on an end) move it a tenth of the interval inside
        t_min, t_max = min(a.t, b.t), max(a.t, b.t)
        margin = 0.1 * (t_max - t_min)
        if min(t_max - t, t - t_min) < margin:
            if stalled or t >= t_max or t <= t_min:
                t = t_max - margin if abs(t - t_max) < abs(t - t_min) else t_min + margin
                stalled = False
            else:
                stalled = True
        else:
            stalled = False

        trial = _probe(evaluate, d, t)
        evaluations += 1
        if trial.f > start.f + c1 * t * start.gtd or trial.f >= bracket[low].f:
            bracket[high] = _keep(trial)
            low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
            continue
        if abs(trial.gtd) <= -c2 * start.gtd:
            bracket[low] = _keep(trial)
            return bracket[low], evaluations
        if trial.gtd * (bracket[high].t - bracket[low].t) >= 0:
            bracket[high] = bracket[low]
        bracket[low] = _keep(trial)
    return bracket[low], evaluations


def _keep(trial: _Trial) -> _Trial:
    """A copy whose gradient no caller can overwrite in place."""
    return _Trial(trial.t, trial.f, trial.g.clone(memory_format=torch.contiguous_format), trial.gtd)
