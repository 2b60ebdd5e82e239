"""The learning-rate range test's arithmetic: the schedule, the smoothed loss, the stop rule and
the suggested learning rate.  Pure (numpy only); ``worker.engine.range_test`` runs the steps.

The test (Smith 2017, section 3.3; fastai's ``lr_find``) trains for ``num_steps`` steps while the
learning rate rises geometrically from ``min_lr`` to ``max_lr``, records the training loss at
every step, and stops once the loss diverges.  Plotted against log lr, the loss is flat where
the rate is too small to learn, falls where it learns, and explodes where it is too large; a
good rate lies on the fall, where the loss drops fastest.

Reference: L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017
(arXiv:1506.01186), section 3.3 "How can one estimate reasonable minimum and maximum boundary
values?"; the smoothing, the stop rule and the two suggestions follow fastai's ``lr_find``
(``fastai.callback.schedule``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# fastai's defaults: the EMA's β, the stop factor, and the points left out of the steepest search
BETA = 0.98
DIVERGE_FACTOR = 4.0
SKIP_START = 10
SKIP_END = 5
# the fewest points the steepest search takes (np.gradient's second-order stencil needs 3)
MIN_POINTS = 5


def _check_range(min_lr: float, max_lr: float, num_steps: int) -> None:
    if not (math.isfinite(min_lr) and min_lr > 0):
        raise ValueError(f"min_lr must be a positive number, got {min_lr}")
    if not (math.isfinite(max_lr) and max_lr > min_lr):
        raise ValueError(f"max_lr must be a number above min_lr = {min_lr}, got {max_lr}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"num_steps must be an integer of at least 2, got {num_steps!r}")


def _check_beta(beta: float) -> None:
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must lie in [0, 1), got {beta}")


def lr_at(step: int, min_lr: float, max_lr: float, num_steps: int) -> float:
    """The learning rate of step ``step`` (counted from 0) of a range test:

        lr_i = min_lr · (max_lr / min_lr) ** (i / (num_steps − 1)),   i = 0 … num_steps − 1,

    so lr_0 = min_lr, lr_{num_steps−1} = max_lr, and each step multiplies the rate by the same
    ratio (max_lr / min_lr) ** (1 / (num_steps − 1)): evenly spaced in log lr (Smith 2017, §3.3).
    The endpoints are returned exactly, not through the power."""
    _check_range(min_lr, max_lr, num_steps)
    if not 0 <= step < num_steps:
        raise ValueError(f"step must lie in [0, {num_steps - 1}], got {step}")
    if step == 0:
        return float(min_lr)
    if step == num_steps - 1:
        return float(max_lr)
    return float(min_lr * (max_lr / min_lr) ** (step / (num_steps - 1)))


def smooth(losses: Sequence[float], beta: float = BETA) -> np.ndarray:
    """The bias-corrected exponential moving average of ``losses`` (Kingma & Ba 2015's correction,
    as fastai's ``lr_find`` smooths its curve):

        a_i = β · a_{i−1} + (1 − β) · L_i,  a_{−1} = 0,      s_i = a_i / (1 − β^{i+1}).

    Without the correction the first values would be pulled towards 0; with it s_0 = L_0.  β = 0
    returns the losses themselves.  A non-finite loss makes every later value non-finite."""
    _check_beta(beta)
    values = np.asarray(losses, dtype=np.float64)
    smoothed = np.empty_like(values)
    avg = 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        for i, loss in enumerate(values):
            avg = beta * avg + (1.0 - beta) * loss
            smoothed[i] = avg / (1.0 - beta ** (i + 1))
    return smoothed


def diverged(smoothed_loss: float, best_so_far: float, factor: float = DIVERGE_FACTOR) -> bool:
    """The stop rule: the smoothed loss is not finite, or exceeds ``factor`` times the best
    (smallest) smoothed loss of the steps before,

        s_i > factor · min_{j<i} s_j      (fastai: factor = 4),

    ``best_so_far`` = inf before the first step (never diverged then).  Meant for losses ≥ 0
    (cross-entropy, MSE, Huber, hinge)."""
    if factor <= 1.0:
        raise ValueError(f"factor must exceed 1, got {factor}")
    if not math.isfinite(smoothed_loss):
        return True
    return math.isfinite(best_so_far) and smoothed_loss > factor * best_so_far


@dataclass(frozen=True)
class Suggestion:
    """What a range test suggests.

    ``lr`` is the recommended rate: ``steepest`` when there is one, else ``min_div_10``.
    ``steepest``: the rate where the smoothed loss falls fastest per decade of lr; None when the
    curve is too short (fewer than ``MIN_POINTS`` points before divergence) or never falls.
    ``minimum``: the rate of the smallest smoothed loss before divergence; ``min_div_10`` =
    ``minimum`` / 10, fastai's rule of thumb (a tenth of the rate where the loss bottoms out).
    ``smoothed``: the smoothed loss at every recorded point, divergence included; ``used``: how
    many points, from the first, precede divergence and count for the suggestion."""

    lr: float
    steepest: float | None
    minimum: float
    min_div_10: float
    smoothed: tuple[float, ...]
    used: int

    @property
    def method(self) -> str:
        """Which rate ``lr`` is: "steepest" or "min_div_10"."""
        return "steepest" if self.steepest is not None else "min_div_10"


def valid_length(smoothed: Sequence[float], factor: float = DIVERGE_FACTOR) -> int:
    """How many points precede divergence: the index of the first point :func:`diverged` flags
    (against the best of the points before it), or all of them."""
    best = math.inf
    for i, value in enumerate(smoothed):
        if diverged(float(value), best, factor):
            return i
        best = min(best, float(value))
    return len(smoothed)


def _window(n: int, skip_start: int, skip_end: int) -> tuple[int, int] | None:
    """The slice [start, stop) of the ``n`` valid points the steepest search takes: without the
    first ``skip_start`` and last ``skip_end`` points (fastai leaves them out: the first are
    warm-up noise, the last are the run-up to divergence).  On a curve too short for both, the
    skips shrink in proportion so that ``MIN_POINTS`` points remain; None below that."""
    if n < MIN_POINTS:
        return None
    skip = skip_start + skip_end
    if n - skip < MIN_POINTS:
        spare = n - MIN_POINTS
        skip_start = spare * skip_start // skip if skip else 0
        skip_end = spare - skip_start
    return skip_start, n - skip_end


def suggest(
    lrs: Sequence[float], losses: Sequence[float], beta: float = BETA, *,
    skip_start: int = SKIP_START, skip_end: int = SKIP_END, diverge_factor: float = DIVERGE_FACTOR,
) -> Suggestion:
    """The suggested learning rate of a range test that recorded ``losses[i]`` at ``lrs[i]``.

    The losses are smoothed (:func:`smooth`, β = ``beta``) and cut at the first point
    :func:`diverged` flags (``diverge_factor``), leaving the valid points 0 … n − 1.  Then

    - ``minimum`` = lr_k for k = argmin_{i<n} s_i,  ``min_div_10`` = ``minimum`` / 10;
    - ``steepest`` = lr_k for k = argmin_i ds_i / d log10 lr_i over the valid points without the
      first ``skip_start`` and last ``skip_end`` (shrunk on short curves, see ``_window``), the
      derivative by ``np.gradient`` (central differences inside, one-sided at the ends); None if
      that slope is nowhere negative or fewer than ``MIN_POINTS`` points remain;
    - ``lr`` = ``steepest`` if not None, else ``min_div_10`` (Smith 2017, §3.3: the rate "when
      the accuracy starts to increase", here where the loss falls fastest; fastai's ``steep``
      and ``minimum`` suggestions).

    ``lrs`` must be positive and strictly increasing.  Raises ``ValueError`` on no valid point
    (the first loss already non-finite)."""
    _check_beta(beta)
    if skip_start < 0 or skip_end < 0:
        raise ValueError(f"skip_start and skip_end must be ≥ 0, got {skip_start} and {skip_end}")
    rates = np.asarray(lrs, dtype=np.float64)
    if rates.ndim != 1 or rates.shape != np.shape(losses):
        raise ValueError(f"lrs and losses must be 1-d and of one length, got {rates.shape} and {np.shape(losses)}")
    if not (np.all(np.isfinite(rates)) and np.all(rates > 0)):
        raise ValueError("lrs must be positive and finite")
    if np.any(np.diff(rates) <= 0):
        raise ValueError("lrs must be strictly increasing")
    smoothed = smooth(losses, beta)
    n = valid_length(smoothed, diverge_factor)
    if n == 0:
        raise ValueError("no loss before divergence: the first loss is not finite")
    minimum = float(rates[int(np.argmin(smoothed[:n]))])
    steepest = None
    window = _window(n, skip_start, skip_end)
    if window is not None:
        start, stop = window
        slopes = np.gradient(smoothed[start:stop], np.log10(rates[start:stop]))
        k = int(np.argmin(slopes))
        if slopes[k] < 0:
            steepest = float(rates[start + k])
    return Suggestion(
        lr=steepest if steepest is not None else minimum / 10.0,
        steepest=steepest,
        minimum=minimum,
        min_div_10=minimum / 10.0,
        smoothed=tuple(float(v) for v in smoothed),
        used=n,
    )
