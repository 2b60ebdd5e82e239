"""Watching one epoch metric: which metrics exist at an epoch's end, which way each improves, and
the rule that early stopping, the best checkpoint and ReduceLROnPlateau share.

At the end of every epoch the engine records, besides speed, the metrics :data:`EPOCH_METRICS`
names for the task; those are what a run may watch.  A :class:`Watch` keeps the best value and
counts the epochs since it last improved.  The rule (as Keras' ``EarlyStopping``):

* ``mode`` max: an epoch improves when ``value − best > min_delta``; min: when
  ``best − value > min_delta``; the first finite value always does; NaN never does;
* an improvement resets ``bad_epochs`` to 0, anything else adds 1;
* early stopping ends the run once ``bad_epochs ≥ patience``: with patience p the run trains p
  epochs past its best one and stops.

The best checkpoint is the weights of the epoch of the last improvement (``best_epoch``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from core.metrics import higher_is_better

Mode = Literal["min", "max"]

# what the engine records at the end of every epoch, by task (worker.engine.loop; a test holds the
# engine to this list)
EPOCH_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("val/loss", "val/accuracy", "train/epoch_loss", "train/accuracy"),
    "regression": ("val/loss", "val/mse", "val/r2", "train/epoch_loss", "train/mse", "train/r2"),
}
# what the best checkpoint watches when the spec has no early stopping
DEFAULT_METRIC = "val/loss"


def mode_for(metric: str) -> Mode:
    """The direction in which ``metric`` improves (``core.metrics.higher_is_better``)."""
    return "max" if higher_is_better(metric) else "min"


@dataclass
class Watch:
    """The best of one metric so far and the epochs since it improved; see the module docstring."""

    metric: str = DEFAULT_METRIC
    mode: Mode | None = None  # None: the metric's own direction
    min_delta: float = 0.0
    best: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0

    def __post_init__(self) -> None:
        if self.mode is None:
            self.mode = mode_for(self.metric)

    def improves(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        gain = value - self.best if self.mode == "max" else self.best - value
        return gain > self.min_delta

    def update(self, epoch: int, value: float | None) -> bool:
        """Count epoch ``epoch``'s value; True when it is the new best."""
        if value is not None and self.improves(float(value)):
            self.best, self.best_epoch, self.bad_epochs = float(value), epoch, 0
            return True
        self.bad_epochs += 1
        return False

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def stop_reason(watch: Watch, patience: int, epoch: int, epochs: int) -> str:
    """What a run stopped early says about why."""
    delta = f" by more than {watch.min_delta:g}" if watch.min_delta else ""
    best = "no finite value" if watch.best is None else f"best {watch.best:.6g} at epoch {watch.best_epoch}"
    return (f"stopped early at epoch {epoch} of {epochs}: {watch.metric} did not improve{delta} for {patience} "
            f"epoch{'s' if patience != 1 else ''} ({best})")


def metric_errors(metric: str, task: str, loc: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], str]]:
    """``[(loc, message)]`` when ``metric`` is not one an epoch of a ``task`` run records."""
    from core.spec.suggest import closest

    names = EPOCH_METRICS[task]
    if metric in names:
        return []
    hint = closest(metric, names)
    did_you_mean = f"; did you mean {hint}?" if hint else ""
    return [(loc, f"{metric!r} is not recorded at an epoch's end of a {task} run{did_you_mean} "
                  f"(one of {', '.join(names)})")]
