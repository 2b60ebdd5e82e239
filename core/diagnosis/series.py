"""The per-epoch view of a run that the diagnosis rules read, reduced from the metrics the engine
records (``worker.engine.recorder``): ``train/loss`` and ``lr`` at every step, ``grad_norm`` and
``update_ratio`` every ``training.diagnostics_every`` steps, ``train/epoch_loss``, ``val/loss``
and ``epoch_time`` once per epoch.

A metric's points of one epoch are reduced to an :class:`EpochStats` (how many, how many finite,
their mean, smallest and largest finite value).  The store computes the same reduction in SQL
(``store.repositories.metrics.epochs``); :func:`aggregate` is its pure form, for points in memory."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

TRAIN_LOSS = "train/loss"
TRAIN_EPOCH_LOSS = "train/epoch_loss"
VAL_LOSS = "val/loss"
LR = "lr"
GRAD_NORM = "grad_norm"
UPDATE_RATIO = "update_ratio"
# recorded once at the end of every epoch: without it an epoch is still running (or was cut short)
EPOCH_END = "epoch_time"

NAMES = (TRAIN_LOSS, TRAIN_EPOCH_LOSS, VAL_LOSS, LR, GRAD_NORM, UPDATE_RATIO, EPOCH_END)


@dataclass(frozen=True, slots=True)
class EpochStats:
    """One metric's points of one epoch: ``count`` points, ``finite`` of them finite; ``mean``,
    ``low`` and ``high`` over the finite ones (None when none is)."""

    count: int
    finite: int
    mean: float | None
    low: float | None
    high: float | None


Aggregates = dict[str, dict[int, EpochStats]]  # metric name -> epoch -> its points' stats


def aggregate(points: Iterable[tuple[str, int | None, float | None]]) -> Aggregates:
    """``(name, epoch, value)`` points → per metric and epoch stats; points without an epoch are
    left out, a None or non-finite value counts as a point that is not finite."""
    values: dict[str, dict[int, list[float | None]]] = {}
    for name, epoch, value in points:
        if epoch is not None:
            values.setdefault(name, {}).setdefault(epoch, []).append(value)
    out: Aggregates = {}
    for name, by_epoch in values.items():
        for epoch, raw in by_epoch.items():
            good = [v for v in raw if v is not None and math.isfinite(v)]
            out.setdefault(name, {})[epoch] = EpochStats(
                len(raw), len(good), sum(good) / len(good) if good else None,
                min(good, default=None), max(good, default=None))
    return out


@dataclass(frozen=True)
class Epochs:
    """The run epoch by epoch (``epochs`` ascending; each list aligned with it, None where the
    metric has no point that epoch, NaN where it has points but none finite).

    ``train_loss`` is ``train/epoch_loss`` (the sample-weighted mean the engine records) or, for
    an epoch without it, the mean of the epoch's ``train/loss`` steps; ``val_loss`` is
    ``val/loss``; ``grad_norm`` and ``update_ratio`` are the means of the epoch's measured steps;
    ``lr`` is the epoch's largest step LR.  ``nonfinite_loss`` counts the epoch's train and val
    loss points that were not finite."""

    epochs: list[int]
    train_loss: list[float | None]
    val_loss: list[float | None]
    grad_norm: list[float | None]
    update_ratio: list[float | None]
    lr: list[float | None]
    nonfinite_loss: list[int]


def _value(stats: EpochStats | None, which: str = "mean") -> float | None:
    if stats is None or stats.count == 0:
        return None
    if stats.finite == 0:
        return math.nan
    return getattr(stats, which)


def epoch_series(aggregates: Aggregates) -> Epochs:
    """The :class:`Epochs` of a run's aggregates.  When the run records ``epoch_time``, epochs
    without it (the one still running, or one a failure cut short) are left out, so a running
    run's diagnosis does not change with every batch."""
    ends = aggregates.get(EPOCH_END)
    epochs = sorted({e for by_epoch in aggregates.values() for e in by_epoch})
    if ends:
        epochs = [e for e in epochs if e in ends]

    def column(name: str, which: str = "mean") -> list[float | None]:
        by_epoch = aggregates.get(name, {})
        return [_value(by_epoch.get(e), which) for e in epochs]

    step_loss = column(TRAIN_LOSS)
    epoch_loss = column(TRAIN_EPOCH_LOSS)
    train_loss = [whole if whole is not None else steps for whole, steps in zip(epoch_loss, step_loss)]

    def nonfinite(e: int) -> int:
        return sum(s.count - s.finite for name in (TRAIN_LOSS, TRAIN_EPOCH_LOSS, VAL_LOSS)
                   if (s := aggregates.get(name, {}).get(e)) is not None)

    return Epochs(epochs, train_loss, column(VAL_LOSS), column(GRAD_NORM), column(UPDATE_RATIO),
                  column(LR, "high"), [nonfinite(e) for e in epochs])
