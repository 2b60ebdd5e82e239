"""Learning-rate schedules: torch's schedulers plus the two pieces torch lacks.

Every named schedule (StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, CyclicLR with
cyclic momentum, ReduceLROnPlateau, CosineAnnealingWarmRestarts, OneCycleLR, LinearLR,
PolynomialLR, ConstantLR) is ``torch.optim.lr_scheduler``'s own: Descent's optimizers are
``torch.optim.Optimizer`` subclasses, so torch's schedulers drive them unchanged, including the
cyclic momentum of CyclicLR/OneCycleLR (``momentum``, or ``betas[0]`` for Adam-likes).

What is added here:

* :class:`Constant`, the "no schedule" schedule, so that every catalog entry names a class;
* :class:`LinearWarmup`, a linear warm-up that can precede *any* scheduler (also
  ReduceLROnPlateau, which ``SequentialLR`` cannot chain) and routes the training loop's two
  calls, :meth:`~LinearWarmup.step_batch` and :meth:`~LinearWarmup.step_epoch`, to the
  scheduler's interval, so the loop never needs to know it;
* :func:`build_scheduler`, which builds one from its catalog name and parameters.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

INTERVALS = ("step", "epoch", "metric")


class Constant(LRScheduler):
    """Leave every parameter group's learning rate as it is.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        last_epoch (int, optional): index of the last epoch, for resuming (default: -1).

    Example:
        >>> sched = Constant(opt)
        >>> sched.step()  # lr unchanged
    """

    def get_lr(self) -> list[float | torch.Tensor]:
        return [group["lr"] for group in self.optimizer.param_groups]


class LinearWarmup:
    r"""Linear learning-rate warm-up in front of any scheduler, stepped by batch and by epoch.

    With :math:`t` the number of optimizer steps taken so far, :math:`W` = ``warmup_steps``,
    :math:`s` = ``start_factor`` and :math:`\eta_{sched}` the wrapped scheduler's learning rate,
    every parameter group trains with

    .. math::
        \eta_t = \eta_{sched} \cdot \left(s + (1 - s)\,\frac{\min(t, W)}{W}\right)

    so the first step uses :math:`s\,\eta_{sched}` and step :math:`W` onward the schedule's
    own value.  A step-interval scheduler (CyclicLR, OneCycleLR) *follows* the warm-up: it is
    not advanced before step :math:`W`, so at step :math:`t \ge W` it is at its own step
    :math:`t - W`.  Epoch-interval schedulers advance on epochs and metric schedulers
    (ReduceLROnPlateau) on validation losses throughout; while the warm-up lasts it scales
    whatever learning rate they set.  The wrapped scheduler always sees its own, unscaled
    learning rates, so chainable schedulers (StepLR, ReduceLROnPlateau) never compound the
    warm-up factor.

    Args:
        optimizer (Optimizer): the optimizer whose groups' ``lr`` is set.
        scheduler (LRScheduler, optional): the schedule after the warm-up; ``None`` keeps the
            learning rate constant.  Build it before this object (torch schedulers set the
            initial learning rate when built).
        warmup_steps (int, optional): optimizer steps of warm-up, 0 for none (default: 0).
        start_factor (float, optional): :math:`s`, in [0, 1] (default: 0).
        interval (str, optional): when ``scheduler`` steps: ``"step"`` (in :meth:`step_batch`),
            ``"epoch"`` or ``"metric"`` (in :meth:`step_epoch`, the latter with the validation
            loss) (default: ``"epoch"``).

    Example:
        >>> opt = optim.SGD(model.parameters(), lr=0.1)
        >>> cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        >>> sched = LinearWarmup(opt, cosine, warmup_steps=500, interval="epoch")
        >>> for epoch in range(epochs):
        ...     for x, y in loader:
        ...         loss_fn(model(x), y).backward(); opt.step(); opt.zero_grad()
        ...         sched.step_batch()
        ...     sched.step_epoch(val_loss=evaluate(model))

    Reference:
        Goyal et al., Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour, 2017 (gradual
        warm-up).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        scheduler: LRScheduler | None = None,
        *,
        warmup_steps: int = 0,
        start_factor: float = 0.0,
        interval: str = "epoch",
    ) -> None:
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"Invalid warmup_steps: {warmup_steps!r} (must be an integer >= 0)")
        if not 0.0 <= start_factor <= 1.0:
            raise ValueError(f"Invalid start_factor: {start_factor} (must be in [0, 1])")
        if interval not in INTERVALS:
            raise ValueError(f"Invalid interval: {interval!r} (must be one of {INTERVALS})")
        if scheduler is not None and scheduler.optimizer is not optimizer:
            raise ValueError("scheduler: drives a different optimizer than the one given")
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.warmup_steps = warmup_steps
        self.start_factor = float(start_factor)
        self.interval = interval
        self.batches = 0
        self.epochs = 0
        # the learning rates the wrapped scheduler set, before the warm-up factor
        self._scheduled = [group["lr"] for group in optimizer.param_groups]
        self._apply()

    def factor(self) -> float:
        """The warm-up factor applied now (1.0 once the warm-up is over)."""
        if self.batches >= self.warmup_steps:
            return 1.0
        return self.start_factor + (1.0 - self.start_factor) * self.batches / self.warmup_steps

    def step_batch(self) -> None:
        """Call after every optimizer step."""
        self.batches += 1
        if self.interval == "step" and self.batches > self.warmup_steps:
            self._step_scheduler()
        self._apply()

    def step_epoch(self, val_loss: float | None = None) -> None:
        """Call after every epoch; ``val_loss`` is required by metric schedulers and ignored otherwise."""
        self.epochs += 1
        if self.interval == "epoch":
            self._step_scheduler()
        elif self.interval == "metric":
            if val_loss is None:
                raise ValueError("val_loss: required by a metric scheduler (ReduceLROnPlateau)")
            self._step_scheduler(float(val_loss))
        self._apply()

    def get_last_lr(self) -> list[float]:
        """The learning rates the optimizer uses now."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "epochs": self.epochs,
            "scheduled": list(self._scheduled),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batches = state["batches"]
        self.epochs = state["epochs"]
        self._scheduled = list(state["scheduled"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self._apply()

    def _step_scheduler(self, *args: float) -> None:
        if self.scheduler is None:
            return
        groups = self.optimizer.param_groups
        for group, lr in zip(groups, self._scheduled, strict=True):
            group["lr"] = lr
        self.scheduler.step(*args)
        self._scheduled = [group["lr"] for group in groups]

    def _apply(self) -> None:
        f = self.factor()
        for group, lr in zip(self.optimizer.param_groups, self._scheduled, strict=True):
            group["lr"] = lr if f == 1.0 else lr * f


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    name: str,
    params: dict[str, Any] | None = None,
    *,
    warmup_steps: int | None = None,
    warmup_start_factor: float | None = None,
    steps_per_epoch: int | None = None,
    epochs: int | None = None,
) -> LinearWarmup:
    """Build the catalog scheduler ``name`` on ``optimizer``, behind its warm-up.

    ``params`` are the catalog's hyperparameters (validated here; length fields left out are
    derived from ``epochs`` and ``steps_per_epoch``, learning-rate bounds from the optimizer's
    ``lr``, see :mod:`optim.catalog.schedulers`).
    ``warmup_steps`` and ``warmup_start_factor`` may be given here or in ``params`` (the
    catalog lists them as common fields of every scheduler), not both with different values.

    Returns a :class:`LinearWarmup`: call ``step_batch()`` after every optimizer step and
    ``step_epoch(val_loss)`` after every epoch, whatever the scheduler's interval.

    Example:
        >>> sched = build_scheduler(opt, "cosineannealinglr", {}, warmup_steps=100,
        ...                         epochs=30, steps_per_epoch=len(loader))
    """
    from optim import catalog
    from optim.factory import check_scheduler_params, derive_scheduler_params

    params = dict(params or {})
    for key, value in (("warmup_steps", warmup_steps), ("warmup_start_factor", warmup_start_factor)):
        if value is None:
            continue
        if key in params and params[key] != value:
            raise ValueError(f"{key}: given twice with different values ({params[key]} and {value})")
        params[key] = value
    try:
        entry = catalog.scheduler(name)
    except KeyError as exc:
        raise ValueError(f"scheduler: {exc.args[0]}") from None
    values = entry.validate_params(params)
    values = derive_scheduler_params(entry, values, epochs, steps_per_epoch, base_lr=optimizer.defaults.get("lr"))
    problems = check_scheduler_params(entry, values, epochs, steps_per_epoch)
    if problems:
        raise ValueError("; ".join(f"{field}: {message}" for field, message in problems))
    warmup = values.pop("warmup_steps")
    start_factor = values.pop("warmup_start_factor")
    scheduler = catalog.load_class(entry)(optimizer, **values)
    return LinearWarmup(
        optimizer, scheduler, warmup_steps=warmup, start_factor=start_factor, interval=entry.interval
    )


__all__ = ["Constant", "LinearWarmup", "build_scheduler", "INTERVALS"]
