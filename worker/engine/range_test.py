"""Smith's learning-rate range test on Descent's engine: one short run whose learning rate rises
geometrically every step, recording the training loss against it, and a suggested rate.

Procedure (Smith 2017, "Cyclical Learning Rates for Training Neural Networks", §3.3; fastai's
``lr_find``):

1. build model, optimizer and batch order exactly as :func:`~worker.engine.loop.train` does for
   the spec (its ``_set_up``: the same seed gives the same initial weights and batches); the
   spec's scheduler is built there but never stepped: the test owns the learning rate;
2. for step i = 0 … num_steps − 1: set every param group's ``lr`` to
   lr_i = min_lr · (max_lr / min_lr) ** (i / (num_steps − 1)) (``core.studies.range_test.lr_at``),
   take one training step (the engine's own ``_one_step``: closure, gradient noise, clipping,
   L2 penalty, AMP scaler as in training), and record ``train/loss`` and ``lr`` (and, on the
   diagnostics steps, ``grad_norm`` and ``update_ratio``) through the engine's
   :class:`~worker.engine.recorder.Recorder`, plus ``range/smoothed_loss``, the bias-corrected
   EMA s_i; batches cycle over as many epochs as the steps need;
3. stop after step i once s_i > ``diverge_factor`` · min_{j<i} s_j or the loss is not finite
   (a non-finite loss is not recorded, as in training);
4. record the suggestion (``core.studies.range_test.suggest``) as ``range/suggested_lr``,
   ``range/steepest_lr`` (absent when there is none) and ``range/min_loss_lr`` at the last
   recorded step.

The learning rate is set through ``param_groups[i]["lr"]``, which every catalogued solver reads
at its step (Lookahead shares its inner optimizer's groups).  For some it is not a plain step
size, and their curve means something else: Rprop takes ``lr`` only as its initial per-weight
step size (later steps adapt their own, so raising ``lr`` after the first step does nothing),
Adagrad divides it by 1 + (t − 1)·lr_decay, AdaBound scales its bounds by lr / initial lr,
L-BFGS/BFGS take it as the line search's first trial step, and Adadelta as a plain multiplier of
an already scale-free update."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from core.studies.range_test import DIVERGE_FACTOR, Suggestion, diverged, lr_at, suggest
from worker.data import TrainingData
from worker.engine.loop import Progress, _never, _one_step, _restore_thread_state, _set_up, _thread_state
from worker.engine.recorder import Diverged, Recorder
from worker.engine.stopping import Interrupter, StopCheck, StopTraining, TimeLimit, Watchdog
from worker.sink import MetricSink

SUGGESTED_LR, STEEPEST_LR, MIN_LOSS_LR = "range/suggested_lr", "range/steepest_lr", "range/min_loss_lr"
SMOOTHED_LOSS = "range/smoothed_loss"


@dataclass
class RangeTestResult:
    """How a range test went.  ``lrs[i]`` and ``losses[i]`` are the rate and ``train/loss`` of the
    recorded step i + 1 (a final non-finite loss is not among them); ``diverged`` says the stop
    rule ended the test, at step ``stopped_at`` (counted from 1, as the metrics' steps; None if
    it did not diverge); ``suggestion`` is None only when no step was recorded.  A cancelled test
    records no ``range/`` suggestion metrics, but its partial ``suggestion`` is returned."""

    status: Literal["succeeded", "cancelled"]
    lrs: list[float]
    losses: list[float]
    diverged: bool
    stopped_at: int | None
    suggestion: Suggestion | None


def range_test(
    spec,
    data: TrainingData,
    *,
    sink: MetricSink,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    beta: float = 0.98,
    diverge_factor: float = DIVERGE_FACTOR,
    should_cancel: Callable[[Progress], bool] = _never,
    cancel_requested: Callable[[], bool] | None = None,
    time_limit: TimeLimit | None = None,
    on_end: Callable[[Progress], None] | None = None,
) -> RangeTestResult:
    """Run the learning-rate range test for ``spec`` (a resolved ``core.spec.ExperimentSpec``) on
    ``data``: ``num_steps`` steps from ``min_lr`` to ``max_lr``, smoothed with ``beta``, stopping
    when the smoothed loss exceeds ``diverge_factor`` times its best (see the module docstring).

    ``should_cancel``, ``cancel_requested`` and ``time_limit`` work as in
    :func:`~worker.engine.loop.train`: a cancel ends the test as ``cancelled``, the time limit
    raises :class:`~worker.engine.stopping.TimeLimitExceeded`.  ``on_end`` is told, however the
    test ends, the last step whose metrics reached the sink and the pass over the train data
    (epoch, from 1) the last step began.  Divergence is the test's normal end, never an exception."""
    for i in (0, num_steps - 1):
        lr_at(i, min_lr, max_lr, num_steps)  # validates the range before anything is built
    stop = StopCheck(should_cancel, cancel_requested, time_limit or TimeLimit(math.inf))
    interruptible = Interrupter()
    thread_state = _thread_state()
    run = _set_up(spec, data, stop)
    run.scheduler = None  # the test sets the rate itself; a schedule stepping it would fight that
    run.total_steps = num_steps
    stop.progress = Progress(0, 0, num_steps)
    recorder = Recorder(sink, data.info.task, data.train.y)
    lrs: list[float] = []
    losses: list[float] = []
    stopped_at: int | None = None
    watchdog = Watchdog(stop.wanted, interruptible) if stop.watched else contextlib.nullcontext()
    try:
        with watchdog:
            try:
                stopped_at = _steps(run, recorder, lrs, losses, min_lr, max_lr, num_steps, beta, diverge_factor,
                                    interruptible)
            except StopTraining:
                interruptible.leave()
                _restore_thread_state(thread_state)
                if stop.why() == "time_limit":
                    raise stop.time_limit.error() from None
                return RangeTestResult("cancelled", lrs, losses, False, None, _suggestion(
                    lrs, losses, beta, diverge_factor))
        suggestion = _suggestion(lrs, losses, beta, diverge_factor)
        if suggestion is not None:
            values = {SUGGESTED_LR: suggestion.lr, MIN_LOSS_LR: suggestion.minimum}
            if suggestion.steepest is not None:
                values[STEEPEST_LR] = suggestion.steepest
            recorder.emit(recorder.step, run.epoch, values)
        return RangeTestResult("succeeded", lrs, losses, stopped_at is not None, stopped_at, suggestion)
    finally:
        if on_end is not None:
            on_end(Progress(recorder.step, run.epoch, num_steps))


def _steps(run, recorder: Recorder, lrs: list[float], losses: list[float], min_lr: float, max_lr: float,
           num_steps: int, beta: float, diverge_factor: float, interruptible: Interrupter) -> int | None:
    """The test's steps, appending to ``lrs`` and ``losses``; returns the step that diverged, or
    None.  The smoothed loss runs along (the same recursion as ``smooth``, checked in tests)."""
    run.model.train()
    avg, best = 0.0, math.inf
    epoch, batches = 0, iter(())
    for i in range(num_steps):
        index = next(batches, None)
        if index is None:  # the next pass over the data, in the order training would take
            epoch += 1
            run.epoch = epoch
            recorder.start_epoch()
            batches = iter(run.order.epoch())
            index = next(batches)
        run.stop(Progress(run.step, run.epoch, num_steps))
        lr = lr_at(i, min_lr, max_lr, num_steps)
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        with interruptible:
            row = _one_step(run, epoch, *run.data.batch(index))
        recorder.add(row)
        try:
            recorder.emit_steps()  # one step at a time: the stop rule needs every loss on the host
        except Diverged as exc:
            return exc.step
        loss = recorder.last["train/loss"]
        lrs.append(row.lr)
        losses.append(loss)
        avg = beta * avg + (1.0 - beta) * loss
        smoothed = avg / (1.0 - beta ** (i + 1))
        recorder.emit(row.step, epoch, {SMOOTHED_LOSS: smoothed})
        if diverged(smoothed, best, diverge_factor):
            return row.step
        best = min(best, smoothed)
    return None


def _suggestion(lrs: list[float], losses: list[float], beta: float, diverge_factor: float) -> Suggestion | None:
    return suggest(lrs, losses, beta, diverge_factor=diverge_factor) if losses else None
