"""The training function: spec, data, metric sink, cancel check and time limit in; trained model
and a summary out.  No Celery, HTTP or SQL in here.

:func:`train` reads top to bottom: set up → resume → per epoch, for every batch: check cancel and
time → one step → record; then the end of the epoch (evaluate, epoch schedules) → checkpoint; at
the end, the test pass.  One step: forward/backward (through a closure for the L-BFGS family and
Newton; K-FAC's hooks fire inside the same forward/backward) → gradient noise → clip → optimizer
step → zero_grad → step schedule.

At each epoch's end the watched metric (``core.spec.monitor``) decides the best checkpoint and
early stopping, and a metric schedule (ReduceLROnPlateau) steps on the metric it names.

A cancel or the time limit is checked before every step and at every closure evaluation; steps
and evaluations run inside a region a watchdog may interrupt, so a stop is honoured within about
a second even in one long step (``worker.engine.stopping``).

Per-step values stay tensors until ``log_every`` steps have gathered (one host sync for many
steps on a GPU); the loss's finiteness is checked then, so a diverged run stops at most
``log_every`` steps after the first bad loss and names that step.

``train/loss`` and ``lr`` are recorded at every step; the diagnostics ``grad_norm`` and
``update_ratio`` only on steps 1, 1 + k, 1 + 2k, … for k = ``training.diagnostics_every`` (the
step about to run, counted from 0, divisible by k; so the first step always counts and a resumed
run measures at the same steps as an uninterrupted one).  Each costs memory passes over all
weights and gradients (the copy θ_{t−1}, ‖θ_t − θ_{t−1}‖², ‖θ_{t−1}‖², ‖g‖²), as much as the
whole optimizer step of a small MLP on CPU; see docs/benchmarks.md.  ``state_bytes``, the
optimizer's state in bytes (what 8-bit state saves), is recorded once, after the first step.

On CPU the optimizer steps through the fused kernel when its solver has one and the kernel is
built (``worker.engine.fused_default``); the run's log says once which path it took."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import ValidationError
from torch import nn

from core.spec import monitor
from optim import catalog
from optim.factory import build_optimizer
from optim.grad_tools import GradientNoise, clip_grad_norm_, clip_grad_value_
from optim.schedulers import build_scheduler
from worker.architectures import build_model
from worker.data import BatchOrder, TrainingData
from worker.engine import checkpoint, fused_default
from worker.engine.metrics import LOSSES, evaluate
from worker.engine.recorder import Recorder, StepRow
from worker.engine.step_stats import StepStats
from worker.engine.stopping import Interrupter, StopCheck, StopTraining, TimeLimit, Watchdog
from worker.sink import MetricSink

log = logging.getLogger(__name__)

# Gaussian gradient noise anneals as η / (1 + t) ** γ (Neelakantan et al. 2015)
NOISE_DECAY = 0.55


@dataclass
class Progress:
    step: int
    epoch: int
    total_steps: int

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 1.0


@dataclass
class TrainResult:
    status: Literal["succeeded", "cancelled", "pruned"]
    model: nn.Module
    step: int
    epoch: int
    summary: dict[str, float] = field(default_factory=dict)  # last value of every metric
    stop_reason: str | None = None  # why a run ended before its last epoch (early stopping, a pruner)
    best_epoch: int = 0  # the epoch whose weights the best checkpoint holds (0: none)


def _never(_: Progress) -> bool:
    return False


def _log_checkpoint(error: checkpoint.StorageError | None) -> None:
    if error is not None:
        log.warning("%s; training goes on and the next epoch tries again", error)


@dataclass
class _Run:
    """Everything one training holds between steps; ``step`` and ``epoch`` count what is done."""

    spec: Any  # core.spec.ExperimentSpec
    data: TrainingData
    model: nn.Module
    params: list[torch.Tensor]
    optimizer: torch.optim.Optimizer
    scheduler: Any  # optim.schedulers' wrapper, or None
    scaler: torch.amp.GradScaler
    order: BatchOrder
    noise: GradientNoise | None
    stats: StepStats
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    autocast: Callable[[], contextlib.AbstractContextManager]
    needs_closure: bool
    stop: StopCheck  # also asked at every closure evaluation
    diagnostics_every: int  # grad_norm and update_ratio on steps where run.step % this == 0
    l2: float  # weight decay a solver without its own takes as an L2 penalty
    watch: monitor.Watch  # the best epoch so far, for the best checkpoint and early stopping
    patience: int | None  # early stopping's, None without it
    epochs: int
    total_steps: int
    fused: bool  # the engine turned the optimizer's fused step on (fused_default)
    step: int = 0
    epoch: int = 0


def train(
    spec,
    data: TrainingData,
    *,
    sink: MetricSink,
    should_cancel: Callable[[Progress], bool] = _never,
    cancel_requested: Callable[[], bool] | None = None,
    time_limit: TimeLimit | None = None,
    checkpoint_path: Path | None = None,
    on_checkpoint: Callable[[checkpoint.StorageError | None], None] = _log_checkpoint,
    resume_from: Path | None = None,
    best_path: Path | None = None,
    on_epoch: Callable[[int, dict[str, float]], str | None] | None = None,
    on_end: Callable[[Progress], None] | None = None,
    log_every: int = 32,
) -> TrainResult:
    """Train the model ``spec`` (a resolved ``core.spec.ExperimentSpec``) describes on ``data``.

    ``should_cancel`` is asked before every step and at every closure evaluation; True ends the
    run as ``cancelled`` (the steps done so far are recorded).  ``cancel_requested`` asks the
    same from a watchdog thread (thread-safe, no arguments): a cancel it sees that the step in
    progress has not honoured within about a second interrupts that step.  Past ``time_limit``
    the run stops the same ways and raises
    :class:`~worker.engine.stopping.TimeLimitExceeded`.  With ``checkpoint_path`` a checkpoint
    is written after every epoch, and ``on_checkpoint`` told how it went: None once it is written,
    the :class:`~worker.engine.checkpoint.StorageError` when the disk refused it twice (the run
    goes on; the next epoch tries again).  ``resume_from`` continues from one (same spec) and
    reproduces the uninterrupted run exactly on CPU, and the training time it records counts
    against ``time_limit``.  With ``best_path`` the weights of every epoch that improves the
    watched metric (``training.early_stopping.metric``, else val/loss; ``core.spec.monitor``) are
    written there, so it ends holding the best epoch's; with early stopping the run ends, succeeded
    with a ``stop_reason``, once that metric has not improved for ``patience`` epochs.
    ``on_epoch(epoch, latest values)`` is asked after every epoch but the last (after its
    checkpoint): a text back ends the run ``pruned`` with that reason, without a test pass (a
    study's pruner, ``worker.pruning``).  Raises :class:`~worker.engine.recorder.Diverged` on a NaN/inf loss and
    ``ValueError`` for a spec the data cannot take.

    ``on_end`` is told, once training has begun and however it ends (succeeded, cancelled, or
    an exception on its way out), where it ended: the last step whose metrics reached the sink
    (so the count of ``train/loss`` points; a diverged run's last finite step) and the epochs
    completed (the count of ``val/`` evaluations) -- what a finished run shows as its progress."""
    stop = StopCheck(should_cancel, cancel_requested, time_limit or TimeLimit(math.inf))
    interruptible = Interrupter()
    thread_state = _thread_state()
    run = _set_up(spec, data, stop)
    if resume_from is not None:
        _resume(run, resume_from)
    stop.progress = Progress(run.step, run.epoch, run.total_steps)
    recorder = Recorder(sink, data.info.task, data.train.y, step=run.step)
    watchdog = Watchdog(stop.wanted, interruptible) if stop.watched else contextlib.nullcontext()
    try:
        with watchdog:
            try:
                for epoch in range(run.epoch + 1, run.epochs + 1):
                    run.model.train()
                    epoch_start = time.perf_counter()
                    recorder.start_epoch()
                    for index in run.order.epoch():
                        stop(Progress(run.step, run.epoch, run.total_steps))
                        with interruptible:
                            row = _one_step(run, epoch, *data.batch(index))
                        recorder.add(row)
                        if run.step == 1:
                            recorder.emit_state_bytes(run.step, epoch, run.optimizer)
                        if len(recorder.rows) >= log_every:
                            recorder.emit_steps()
                    improved = _end_of_epoch(run, recorder, epoch, epoch_start, interruptible)
                    # the best weights before the resume point that records them as the best
                    best_error = _save_best(best_path, run.model) if improved and best_path is not None else None
                    if checkpoint_path is not None:
                        sink.flush()  # resuming re-emits only steps after the checkpoint: those before must be stored
                        try:
                            checkpoint.save(checkpoint_path, _checkpoint_state(run))
                        except checkpoint.StorageError as exc:
                            on_checkpoint(exc)  # the resume point's failure is the one to tell
                        else:
                            on_checkpoint(best_error)
                    elif best_error is not None:
                        on_checkpoint(best_error)
                    pruned = on_epoch(epoch, dict(recorder.last)) if on_epoch is not None and epoch < run.epochs else None
                    if pruned is not None:
                        return TrainResult("pruned", run.model, run.step, run.epoch, recorder.last, pruned,
                                           run.watch.best_epoch)
                    if run.patience is not None and run.watch.bad_epochs >= run.patience and epoch < run.epochs:
                        stopped = monitor.stop_reason(run.watch, run.patience, epoch, run.epochs)
                        return _finish(run, recorder, interruptible, stopped)
                return _finish(run, recorder, interruptible)
            except StopTraining:
                interruptible.leave()
                _restore_thread_state(thread_state)
            recorder.emit_steps()
            if stop.why() == "time_limit":
                raise stop.time_limit.error()
            return TrainResult("cancelled", run.model, run.step, run.epoch, recorder.last,
                               best_epoch=run.watch.best_epoch)
    finally:
        if on_end is not None:
            on_end(Progress(recorder.step, run.epoch, run.total_steps))


def _thread_state() -> tuple[bool, int]:
    return torch.is_grad_enabled(), torch._C._len_torch_function_stack()


def _restore_thread_state(state: tuple[bool, int]) -> None:
    """Undo what an interrupted context manager's skipped exit may have left in this thread: grad
    mode (``torch.no_grad``) and torch-function modes (Newton's ``keep_graph``)."""
    grad_enabled, modes = state
    torch.set_grad_enabled(grad_enabled)
    while torch._C._len_torch_function_stack() > modes:
        torch._C._pop_torch_function_stack()


def _set_up(spec, data: TrainingData, stop: StopCheck) -> _Run:
    """Seed, then build model, optimizer, batch order, scheduler, scaler and noise, in this order
    (the order fixes the initial weights and every generator's stream)."""
    training = spec.training
    device = data.device
    loss_name = training.loss or ("cross_entropy" if data.info.task == "classification" else "mse")
    torch.backends.cudnn.benchmark = False
    checkpoint.seed_everything(training.seed)
    model = build_model(spec.architecture.name, spec.architecture_hparams(), data.feature_shape, data.n_outputs)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    entry = catalog.solver(spec.solver.name)
    optimizer, fused = _build_optimizer(spec, entry, model, params)
    order = BatchOrder(len(data.train), training.batch_size, training.seed + 1, data.train.x.device)
    scheduler = _build_scheduler(spec, optimizer, steps_per_epoch=len(order))
    use_scaler = device.type == "cuda" and training.precision == "fp16" and not entry.needs_closure
    noise = None
    if training.gradient_noise:
        noise = GradientNoise(params, eta=training.gradient_noise, gamma=NOISE_DECAY, seed=training.seed + 2)
    return _Run(
        spec, data, model, params, optimizer, scheduler,
        scaler=torch.amp.GradScaler("cuda", enabled=use_scaler),
        order=order,
        noise=noise,
        stats=StepStats(params, flat=not entry.needs_closure),
        loss_fn=LOSSES[loss_name],
        autocast=_autocast(device, training.precision),
        needs_closure=entry.needs_closure,
        stop=stop,
        diagnostics_every=training.diagnostics_every,
        l2=spec.l2_penalty(),
        watch=spec.watch(),
        patience=training.early_stopping.patience if training.early_stopping is not None else None,
        epochs=training.epochs,
        total_steps=len(order) * training.epochs,
        fused=fused,
    )


def _build_optimizer(spec, entry, model: nn.Module, params: list[torch.Tensor]) -> tuple[torch.optim.Optimizer, bool]:
    """The optimizer, and whether the engine turned its fused step on (logged once)."""
    n_params = sum(p.numel() for p in params)
    if entry.max_params is not None and n_params > entry.max_params:
        raise ValueError(
            f"solver: {entry.name} is meant for at most {entry.max_params} parameters and this model has "
            f"{n_params}; choose a smaller architecture or a first-order solver"
        )
    hparams = spec.solver_hparams()
    fused, path = fused_default.choose(entry.name, hparams, params)
    log.info("optimizer %s steps through the %s", entry.name, path)
    optimizer = build_optimizer(params, entry.name, hparams, model=model if entry.needs_model else None,
                                fused=True if fused else None)
    return optimizer, fused


def _build_scheduler(spec, optimizer: torch.optim.Optimizer, *, steps_per_epoch: int):
    if spec.scheduler is None:
        return None
    entry = catalog.scheduler(spec.scheduler.name)
    # a length field the api did not resolve is None here; build_scheduler derives it
    params = {k: v for k, v in spec.scheduler_hparams().items() if v is not None or entry.hyperparameter(k).nullable}
    return build_scheduler(
        optimizer, entry.name, params,
        warmup_steps=spec.scheduler.warmup_steps, warmup_start_factor=spec.scheduler.warmup_start_factor,
        steps_per_epoch=steps_per_epoch, epochs=spec.training.epochs,
    )


def _autocast(device: torch.device, precision: str) -> Callable[[], contextlib.AbstractContextManager]:
    if device.type != "cuda" or precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast("cuda", dtype=dtype)


def _resume(run: _Run, path: Path) -> None:
    """Continue where the checkpoint at ``path`` stopped: every state and generator as it was."""
    state = checkpoint.load(path)
    if not _same_spec(run.spec, state["spec"]):
        raise ValueError("checkpoint: it belongs to a different spec; delete it to start over")
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    _keep_path(run)
    if run.scheduler is not None:
        run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    run.order.load_state_dict(state["order"])
    if run.noise is not None:
        noise = state["noise"]
        if isinstance(noise, torch.Tensor):  # a checkpoint holding the bare generator state
            noise = {"step": 0, "seed": run.noise.seed, "generators": {str(run.params[0].device): noise}}
        run.noise.load_state_dict(noise)
    checkpoint.set_rng_states(state["rng"])
    run.step, run.epoch = state["step"], state["epoch"]
    if "watch" in state:  # absent in checkpoints written before the best checkpoint existed
        run.watch.load_state_dict(state["watch"])
    run.stop.time_limit.spent_before_s = state.get("training_s", 0.0)  # absent in older checkpoints


def _keep_path(run: _Run) -> None:
    """Give the loaded parameter groups this run's ``fused`` flag: ``load_state_dict`` brings
    back the checkpoint writer's, which may have had the kernel when this process has not (a
    fused step would then build it mid-run) or lacked it.  The paths agree to rounding, and
    each side of a resume is exact on its own path.  A spec that chooses the path itself
    (``fused_default.spec_chooses``) wrote the same flag it builds with: nothing to do."""
    if fused_default.spec_chooses(run.spec.solver_hparams()):
        return
    for group in run.optimizer.param_groups:
        if "fused" in group or run.fused:
            group["fused"] = True if run.fused else None


def _same_spec(spec, stored: dict) -> bool:
    """Whether a checkpoint's spec is ``spec``, once defaults a newer worker added (a field the
    checkpoint's writer did not know) are filled in, so a run resumes across an upgrade."""
    try:
        stored = type(spec).model_validate(stored).model_dump(mode="json")
    except ValidationError:
        return False
    return stored == spec.model_dump(mode="json")


def _checkpoint_state(run: _Run) -> dict[str, Any]:
    return {
        "spec": run.spec.model_dump(mode="json"),
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
        "scaler": run.scaler.state_dict(),
        "order": run.order.state_dict(),
        "noise": run.noise.state_dict() if run.noise is not None else None,
        "rng": checkpoint.rng_states(),
        "step": run.step,
        "epoch": run.epoch,
        "watch": run.watch.state_dict(),
        "training_s": run.stop.time_limit.spent_s(),
    }


def _one_step(run: _Run, epoch: int, x: torch.Tensor, y: torch.Tensor) -> StepRow:
    """One optimizer step on the batch ``(x, y)``; returns its values, still tensors (the
    diagnostics None on a step that does not measure them)."""
    lr = float(run.optimizer.param_groups[0]["lr"])
    seen: list[torch.Tensor] = []  # loss and output at the step's starting point
    # ‖g‖² at the step's starting point, before clipping; None: this step does not measure
    grad_sq: list[torch.Tensor] | None = [] if run.step % run.diagnostics_every == 0 else None
    if grad_sq is not None:
        run.stats.snapshot()
    if run.needs_closure:
        run.optimizer.step(functools.partial(_closure, run, x, y, seen, grad_sq))
    else:
        _forward_backward(run, x, y, seen)
        run.scaler.unscale_(run.optimizer)
        _noise_and_clip(run, grad_sq)
        run.scaler.step(run.optimizer)
        run.scaler.update()
    loss, out = seen
    update_sq = weight_sq = None
    if grad_sq is not None:
        update_sq, weight_sq = run.stats.update_sq()
    run.stats.zero_grad(run.optimizer)
    if run.scheduler is not None:
        run.scheduler.step_batch()
    run.step += 1
    return StepRow(run.step, epoch, time.time(), lr, loss, grad_sq[0] if grad_sq else None, update_sq, weight_sq,
                   out, y)


def _forward_backward(run: _Run, x: torch.Tensor, y: torch.Tensor, seen: list[torch.Tensor]) -> torch.Tensor:
    with run.autocast():
        out = run.model(x)
        loss = run.loss_fn(out, y)
    if not seen:  # the first evaluation is the one at the step's starting point
        seen.extend((loss.detach(), out.detach()))
    if run.l2:  # the objective of a solver without its own weight decay; train/loss stays the data loss
        loss = loss + 0.5 * run.l2 * sum(p.square().sum() for p in run.params)
    run.scaler.scale(loss).backward()
    return loss


def _closure(run: _Run, x: torch.Tensor, y: torch.Tensor, seen: list[torch.Tensor],
             grad_sq: list[torch.Tensor] | None) -> torch.Tensor:
    run.stop(Progress(run.step, run.epoch, run.total_steps))  # one step may evaluate it a thousand times
    with torch.enable_grad():
        run.optimizer.zero_grad(set_to_none=True)
        loss = _forward_backward(run, x, y, seen)
        # the gradient norm, like the loss, is the one at the step's starting point: the first evaluation's
        _noise_and_clip(run, grad_sq if grad_sq is not None and not grad_sq else None)
    return loss.detach()


def _noise_and_clip(run: _Run, grad_sq: list[torch.Tensor] | None) -> None:
    """Annealed gradient noise, then clipping (by value, then by norm).  With ``grad_sq`` (a
    list) appends ‖g‖², the squared global L2 norm of the gradients clipping receives (noise
    included, before any clipping: the step's ``grad_norm`` shows how far clipping cut).  Norm
    clipping alone computes that norm anyway, so then it costs nothing more."""
    training = run.spec.training
    if run.noise is not None:
        # t is the optimizer step: every evaluation of a closure within one step gets the same variance
        run.noise.step = run.step
        run.noise()
    norm_gives_it = training.grad_clip_value is None and training.grad_clip_norm is not None
    if grad_sq is not None and not norm_gives_it:
        grad_sq.append(run.stats.grad_sq())
    if training.grad_clip_value is not None:
        clip_grad_value_(run.params, training.grad_clip_value)
    if training.grad_clip_norm is not None:
        total = clip_grad_norm_(run.params, training.grad_clip_norm)
        if grad_sq is not None and norm_gives_it:
            grad_sq.append(total.square())


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _save_best(path: Path, model: nn.Module) -> checkpoint.StorageError | None:
    """Write the best epoch's weights; when the disk refuses, remove the older best instead (a
    best checkpoint that is not the best epoch's would be served as if it were) and return why."""
    try:
        checkpoint.write_atomically(path, _weights(model))
    except checkpoint.StorageError as exc:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        return exc
    return None


def _end_of_epoch(run: _Run, recorder: Recorder, epoch: int, epoch_start: float, interruptible: Interrupter) -> bool:
    """Emit the epoch's last steps and its metrics (train, speed, validation); step epoch schedules
    (a metric schedule with the metric it watches); True when the watched metric improved."""
    recorder.emit_steps()
    values = recorder.epoch_values(time.perf_counter() - epoch_start)
    with interruptible:
        val = evaluate(run.model, run.data.chunks(run.data.val), run.loss_fn, run.data.info.task, run.autocast)
    values.update({f"val/{k}": v for k, v in val.items()})
    recorder.emit(run.step, epoch, values)
    if run.scheduler is not None:
        # no validation part (an empty val split): a metric schedule watches the train loss instead
        watched = getattr(run.spec.scheduler, "metric", monitor.DEFAULT_METRIC)
        run.scheduler.step_epoch(val_loss=values.get(watched, values["train/epoch_loss"]))
    run.epoch = epoch
    return run.watch.update(epoch, values.get(run.watch.metric))


def _finish(run: _Run, recorder: Recorder, interruptible: Interrupter, stop_reason: str | None = None) -> TrainResult:
    """The test pass on the weights the run ended with (``stop_reason``: it stopped early)."""
    with interruptible:
        test = evaluate(run.model, run.data.chunks(run.data.test), run.loss_fn, run.data.info.task, run.autocast)
    recorder.emit(run.step, run.epoch, {f"test/{k}": v for k, v in test.items()})
    return TrainResult("succeeded", run.model, run.step, run.epoch, recorder.last, stop_reason,
                       run.watch.best_epoch)
