"""The training function: spec, data, metric sink and cancel check in; trained model and a
summary out.  No Celery, HTTP or SQL in here.

One linear loop per optimizer step: check cancel → fetch batch → forward/backward (through a
closure for the L-BFGS family and Newton; K-FAC's hooks fire inside the same forward/backward)
→ noise → clip → step → zero_grad → scheduler → record.  At each epoch's end it evaluates,
steps epoch schedules, writes the checkpoint.

Per-step values stay tensors until ``log_every`` steps have gathered (one host sync for many
steps on a GPU); the loss's finiteness is checked then, so a diverged run stops at most
``log_every`` steps after the first bad loss and names that step."""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from optim import catalog
from optim.factory import build_optimizer
from optim.schedulers import build_scheduler
from worker.architectures import build_model
from worker.data import BatchOrder, TrainingData
from worker.engine import checkpoint
from worker.engine.metrics import LOSSES, evaluate
from worker.engine.step_stats import StepStats
from worker.sink import MetricPoint, MetricSink

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
    status: Literal["succeeded", "cancelled"]
    model: nn.Module
    step: int
    epoch: int
    summary: dict[str, float] = field(default_factory=dict)  # last value of every metric


class Diverged(RuntimeError):
    """The loss became NaN or infinite; the message tells the user what to try."""

    def __init__(self, step: int, loss: float):
        self.step, self.loss = step, loss
        super().__init__(f"diverged at step {step} (loss = {loss}); try a lower base_lr")


def _never(_: Progress) -> bool:
    return False


def _autocast(device: torch.device, precision: str) -> Callable[[], contextlib.AbstractContextManager]:
    if device.type != "cuda" or precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast("cuda", dtype=dtype)


def _scheduler_params(entry, params: dict[str, Any]) -> dict[str, Any]:
    # a length field the api did not resolve is None here; build_scheduler derives it
    return {k: v for k, v in params.items() if v is not None or entry.hyperparameter(k).nullable}


class _Recorder:
    """Per-step values, kept as tensors and turned into points ``log_every`` steps at a time
    (one host transfer for many steps); it also sums the epoch's loss and quality from them."""

    def __init__(self, sink: MetricSink, task: str):
        self.sink = sink
        self.task = task
        self.rows: list[tuple] = []
        self.last: dict[str, float] = {}
        self.start_epoch()

    def start_epoch(self) -> None:
        self.loss_sum = 0.0
        self.quality_sum = 0.0  # correct predictions, or squared error
        self.samples = 0

    def step(self, step, epoch, lr, loss, grad_sq, update_sq, weight_sq, out, y) -> None:
        self.rows.append((step, epoch, time.time(), lr, loss, grad_sq, update_sq, weight_sq, out, y))

    def emit_steps(self) -> None:
        if not self.rows:
            return
        rows, self.rows = self.rows, []
        outs, ys = torch.cat([r[8] for r in rows]), torch.cat([r[9] for r in rows])
        if self.task == "classification":
            quality = (outs.argmax(dim=-1) == ys).sum()
        else:
            quality = ((outs.reshape(ys.shape).double() - ys.double()) ** 2).sum()
        columns = torch.stack([torch.stack([r[i] for r in rows]).double() for i in (4, 5, 6, 7)])
        values = zip(*columns.tolist())
        points: list[MetricPoint] = []
        for (step, epoch, wall, lr, *_, y), (loss, grad_sq, update_sq, weight_sq) in zip(rows, values):
            if not math.isfinite(loss):
                self.sink.add(points)
                raise Diverged(step, loss)
            points += [
                MetricPoint("train/loss", step, epoch, loss, wall),
                MetricPoint("lr", step, epoch, lr, wall),
                MetricPoint("grad_norm", step, epoch, math.sqrt(grad_sq), wall),
                MetricPoint("update_ratio", step, epoch, math.sqrt(update_sq / max(weight_sq, 1e-24)), wall),
            ]
            self.loss_sum += loss * len(y)
            self.samples += len(y)
        self.quality_sum += float(quality)
        self.last.update({p.name: p.value for p in points[-4:]})
        self.sink.add(points)

    def emit(self, step: int, epoch: int, values: dict[str, float]) -> None:
        wall = time.time()
        self.last.update(values)
        self.sink.add([MetricPoint(name, step, epoch, float(v), wall) for name, v in values.items()])


def train(
    spec,
    data: TrainingData,
    *,
    sink: MetricSink,
    should_cancel: Callable[[Progress], bool] = _never,
    checkpoint_path: Path | None = None,
    resume_from: Path | None = None,
    log_every: int = 32,
) -> TrainResult:
    """Train the model ``spec`` (a resolved ``core.spec.ExperimentSpec``) describes on ``data``.

    ``should_cancel`` is asked before every step; True ends the run as ``cancelled``.  With
    ``checkpoint_path`` a checkpoint is written after every epoch; ``resume_from`` continues
    from one (same spec) and reproduces the uninterrupted run exactly on CPU.  Raises
    :class:`Diverged` on a NaN/inf loss and ``ValueError`` for a spec the data cannot take."""
    training = spec.training
    device = data.device
    task = data.info.task
    loss_name = training.loss or ("cross_entropy" if task == "classification" else "mse")
    loss_fn = LOSSES[loss_name]
    autocast = _autocast(device, training.precision)
    torch.backends.cudnn.benchmark = False

    checkpoint.seed_everything(training.seed)
    model = build_model(spec.architecture.name, spec.architecture_hparams(), data.feature_shape, data.n_outputs)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)
    entry = catalog.solver(spec.solver.name)
    if entry.max_params is not None and n_params > entry.max_params:
        raise ValueError(
            f"solver: {entry.name} is meant for at most {entry.max_params} parameters and this model has "
            f"{n_params}; choose a smaller architecture or a first-order solver"
        )
    optimizer = build_optimizer(
        params, entry.name, spec.solver_hparams(), model=model if entry.needs_model else None
    )
    order = BatchOrder(len(data.train), training.batch_size, training.seed + 1, data.train.x.device)
    steps_per_epoch, epochs = len(order), training.epochs
    total_steps = steps_per_epoch * epochs
    scheduler = None
    if spec.scheduler is not None:
        sched_entry = catalog.scheduler(spec.scheduler.name)
        scheduler = build_scheduler(
            optimizer, sched_entry.name, _scheduler_params(sched_entry, spec.scheduler_hparams()),
            warmup_steps=spec.scheduler.warmup_steps, warmup_start_factor=spec.scheduler.warmup_start_factor,
            steps_per_epoch=steps_per_epoch, epochs=epochs,
        )
    use_scaler = device.type == "cuda" and training.precision == "fp16" and not entry.needs_closure
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    noise_gen = torch.Generator(device=device).manual_seed(training.seed + 2) if training.gradient_noise else None
    # the train targets' spread, for the running R² of regression epochs
    if task == "regression":
        y = data.train.y.double()
        train_ss_tot = float(((y - y.mean()) ** 2).sum())

    step, done_epochs = 0, 0
    if resume_from is not None:
        state = checkpoint.load(resume_from)
        if state["spec"] != spec.model_dump(mode="json"):
            raise ValueError("checkpoint: it belongs to a different spec; delete it to start over")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        order.load_state_dict(state["order"])
        if noise_gen is not None:
            noise_gen.set_state(state["noise"])
        checkpoint.set_rng_states(state["rng"])
        step, done_epochs = state["step"], state["epoch"]

    recorder = _Recorder(sink, task)
    needs_closure = entry.needs_closure
    stats = StepStats(params, flat=not needs_closure)

    l2 = spec.l2_penalty()

    def forward_backward(x: torch.Tensor, y: torch.Tensor, seen: list[torch.Tensor]) -> torch.Tensor:
        with autocast():
            out = model(x)
            loss = loss_fn(out, y)
        if not seen:  # the first evaluation is the one at the step's starting point
            seen.extend((loss.detach(), out.detach()))
        if l2:  # the objective of a solver without its own weight decay; train/loss stays the data loss
            loss = loss + 0.5 * l2 * sum(p.square().sum() for p in params)
        scaler.scale(loss).backward()
        return loss

    def closure(x: torch.Tensor, y: torch.Tensor, seen: list[torch.Tensor], step: int) -> torch.Tensor:
        with torch.enable_grad():
            optimizer.zero_grad(set_to_none=True)
            loss = forward_backward(x, y, seen)
            _grad_tools(params, training, noise_gen, step, stats)
        return loss.detach()

    for epoch in range(done_epochs + 1, epochs + 1):
        model.train()
        epoch_start = time.perf_counter()
        recorder.start_epoch()
        for index in order.epoch():
            if should_cancel(Progress(step, epoch - 1, total_steps)):
                recorder.emit_steps()
                return TrainResult("cancelled", model, step, epoch - 1, recorder.last)
            x, y = data.batch(index)
            lr = float(optimizer.param_groups[0]["lr"])
            seen: list[torch.Tensor] = []

            stats.snapshot()
            if needs_closure:
                optimizer.step(functools.partial(closure, x, y, seen, step))
                grad_sq = stats.grad_sq()
            else:
                forward_backward(x, y, seen)
                scaler.unscale_(optimizer)
                grad_sq = _grad_tools(params, training, noise_gen, step, stats)
                scaler.step(optimizer)
                scaler.update()
            loss, out = seen
            update_sq, weight_sq = stats.update_sq()
            stats.zero_grad(optimizer)
            if scheduler is not None:
                scheduler.step_batch()
            step += 1
            recorder.step(step, epoch, lr, loss, grad_sq, update_sq, weight_sq, out, y)
            if len(recorder.rows) >= log_every:
                recorder.emit_steps()
        recorder.emit_steps()
        epoch_time = time.perf_counter() - epoch_start
        n_seen = recorder.samples
        epoch_values = {
            "train/epoch_loss": recorder.loss_sum / n_seen,
            "epoch_time": epoch_time,
            "samples_per_s": n_seen / epoch_time if epoch_time > 0 else float("inf"),
        }
        total_quality = recorder.quality_sum
        if task == "classification":
            epoch_values["train/accuracy"] = total_quality / n_seen
        else:
            epoch_values["train/mse"] = total_quality / n_seen
            epoch_values["train/r2"] = 1.0 - total_quality / train_ss_tot if train_ss_tot > 0 else float("nan")
        val = evaluate(model, data.chunks(data.val), loss_fn, task, autocast)
        epoch_values.update({f"val/{k}": v for k, v in val.items()})
        recorder.emit(step, epoch, epoch_values)
        if scheduler is not None:
            scheduler.step_epoch(val_loss=val.get("loss", epoch_values["train/epoch_loss"]))
        if checkpoint_path is not None:
            sink.flush()  # resuming re-emits only steps after the checkpoint: those before must be stored
            checkpoint.save(checkpoint_path, {
                "spec": spec.model_dump(mode="json"),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict(),
                "order": order.state_dict(),
                "noise": noise_gen.get_state() if noise_gen is not None else None,
                "rng": checkpoint.rng_states(),
                "step": step,
                "epoch": epoch,
            })

    test = evaluate(model, data.chunks(data.test), loss_fn, task, autocast)
    recorder.emit(step, epochs, {f"test/{k}": v for k, v in test.items()})
    return TrainResult("succeeded", model, step, epochs, recorder.last)


def _grad_tools(params, training, noise_gen, step: int, stats: StepStats) -> torch.Tensor:
    """Annealed gradient noise, then clipping; returns the squared global gradient norm before clipping."""
    if training.gradient_noise:
        std = math.sqrt(training.gradient_noise / (1 + step) ** NOISE_DECAY)
        for p in params:
            if p.grad is not None:
                p.grad.add_(torch.randn(p.grad.shape, generator=noise_gen, device=p.device, dtype=p.dtype), alpha=std)
    if training.grad_clip_value is not None:
        torch.nn.utils.clip_grad_value_(params, training.grad_clip_value)
    if training.grad_clip_norm is not None:
        return torch.nn.utils.clip_grad_norm_(params, training.grad_clip_norm).square()
    return stats.grad_sq()
