"""From the loop's per-step tensors to metric points.  A :class:`StepRow` per optimizer step
keeps its values as tensors; ``log_every`` of them are read to the host at once (one transfer
for many steps on a GPU), checked for a finite loss, turned into points and handed to the sink.
The recorder also sums each epoch's loss and quality for the ``train/`` epoch metrics."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from optim.quantization import state_bytes
from worker.sink import MetricPoint, MetricSink

# the bytes of the optimizer's state tensors, recorded once, after the first step; a diagnostic without
# a path, as lr and grad_norm are (a name with one is an epoch metric a spec may watch)
STATE_BYTES = "state_bytes"


class Diverged(RuntimeError):
    """The loss became NaN or infinite; the message tells the user what to try."""

    def __init__(self, step: int, loss: float):
        self.step, self.loss = step, loss
        super().__init__(f"diverged at step {step} (loss = {loss}); try a lower base_lr")


@dataclass(slots=True)
class StepRow:
    """One optimizer step: the loss, squared norms and outputs stay on the device until emitted."""

    step: int
    epoch: int
    wall_time: float
    lr: float
    loss: torch.Tensor
    # the diagnostics, None on a step that does not measure them (``training.diagnostics_every``)
    grad_sq: torch.Tensor | None  # ‖∇‖², before any clipping
    update_sq: torch.Tensor | None  # ‖θ_t − θ_{t−1}‖²
    weight_sq: torch.Tensor | None  # ‖θ_{t−1}‖²
    out: torch.Tensor  # the model's output at the step's starting point
    y: torch.Tensor


def _step_points(row: StepRow, loss: float, diagnostics: tuple[float, float, float] | None) -> list[MetricPoint]:
    step, epoch, wall = row.step, row.epoch, row.wall_time
    points = [MetricPoint("train/loss", step, epoch, loss, wall), MetricPoint("lr", step, epoch, row.lr, wall)]
    if diagnostics is not None:
        grad_sq, update_sq, weight_sq = diagnostics
        points += [
            MetricPoint("grad_norm", step, epoch, math.sqrt(grad_sq), wall),
            MetricPoint("update_ratio", step, epoch, math.sqrt(update_sq / max(weight_sq, 1e-24)), wall),
        ]
    return points


def _sum_sq_deviation(y: torch.Tensor) -> float:
    y = y.double()
    return float(((y - y.mean()) ** 2).sum())


class Recorder:
    """Gathers :class:`StepRow` s and emits them as points; ``last`` holds every metric's latest value."""

    def __init__(self, sink: MetricSink, task: str, train_y: torch.Tensor, *, step: int = 0):
        self.sink = sink
        self.step = step  # the last step whose points reached the sink (a resumed run's: the checkpoint's)
        self.task = task
        # the train targets' spread, the denominator of the running R² of regression epochs
        self.train_ss_tot = None if task == "classification" else _sum_sq_deviation(train_y)
        self.rows: list[StepRow] = []
        self.last: dict[str, float] = {}
        self.start_epoch()

    def start_epoch(self) -> None:
        self.loss_sum = 0.0
        self.quality_sum = 0.0  # correct predictions, or squared error
        self.samples = 0

    def add(self, row: StepRow) -> None:
        self.rows.append(row)

    def emit_steps(self) -> None:
        """Read the gathered rows to the host and emit them; raises :class:`Diverged` at the first
        non-finite loss, after emitting the steps before it."""
        if not self.rows:
            return
        rows, self.rows = self.rows, []
        outs, ys = torch.cat([r.out for r in rows]), torch.cat([r.y for r in rows])
        if self.task == "classification":
            quality = (outs.argmax(dim=-1) == ys).sum()
        else:
            quality = ((outs.reshape(ys.shape).double() - ys.double()) ** 2).sum()
        measured = [r for r in rows if r.grad_sq is not None]
        # one transfer: every loss, then the measured steps' three squared norms
        columns = [torch.stack([r.loss for r in rows]).double()]
        if measured:
            columns.append(torch.stack([t for r in measured for t in (r.grad_sq, r.update_sq, r.weight_sq)]).double())
        values = torch.cat(columns).tolist()
        losses, flat = values[:len(rows)], iter(values[len(rows):])
        diagnostics = {id(r): (next(flat), next(flat), next(flat)) for r in measured}
        points: list[MetricPoint] = []
        for row, loss in zip(rows, losses):
            if not math.isfinite(loss):
                self.sink.add(points)
                raise Diverged(row.step, loss)
            points += _step_points(row, loss, diagnostics.get(id(row)))
            self.step = row.step
            self.loss_sum += loss * len(row.y)
            self.samples += len(row.y)
        self.quality_sum += float(quality)
        self.last.update({p.name: p.value for p in points})
        self.sink.add(points)

    def epoch_values(self, epoch_time: float) -> dict[str, float]:
        """The epoch's ``train/`` metrics and its speed, from the steps emitted since :meth:`start_epoch`."""
        n = self.samples
        values = {
            "train/epoch_loss": self.loss_sum / n,
            "epoch_time": epoch_time,
            "samples_per_s": n / epoch_time if epoch_time > 0 else float("inf"),
        }
        if self.train_ss_tot is None:
            values["train/accuracy"] = self.quality_sum / n
        else:
            values["train/mse"] = self.quality_sum / n
            ss_tot = self.train_ss_tot
            values["train/r2"] = 1.0 - self.quality_sum / ss_tot if ss_tot > 0 else float("nan")
        return values

    def emit_state_bytes(self, step: int, epoch: int, optimizer: torch.optim.Optimizer) -> None:
        """:data:`STATE_BYTES`: the optimizer's memory (``optim.quantization.state_bytes``), which
        8-bit state cuts about fourfold; its state exists once it has stepped."""
        self.emit(step, epoch, {STATE_BYTES: float(state_bytes(optimizer))})

    def emit(self, step: int, epoch: int, values: dict[str, float]) -> None:
        wall = time.time()
        self.last.update(values)
        self.sink.add([MetricPoint(name, step, epoch, float(v), wall) for name, v in values.items()])
