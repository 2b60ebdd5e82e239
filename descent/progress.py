"""Live progress of running experiments in a terminal, with nothing but ANSI escapes.

On a terminal every followed run has one line, redrawn in place:

    #12 adam-iris      [██████████░░░░░░░░░░]  3/5 ep  train/loss 0.412  val/accuracy 0.933  running

Piped into a file or a CI log, a line is printed only when a run's epoch or status changes, so
the log reads as a history instead of a wall of carriage returns."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from typing import TextIO

from core.statuses import FINISHED

BAR_WIDTH = 20
# Metrics worth a place on a narrow line, most telling first; others follow alphabetically.
SCORE_WORDS = ("loss", "error", "accuracy", "r2", "f1", "auc")
PREFERRED_METRICS = ("train/loss", "val/loss", "val/accuracy", "val/r2", "test/loss", "test/accuracy", "test/r2", "lr")


@dataclass
class RunState:
    """What one line shows about one run."""

    id: int
    name: str
    status: str = "queued"
    epoch: int = 0
    epochs: int | None = None
    progress: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """``[████░░░░]`` filled to ``fraction`` (clamped to 0..1), in whole cells."""
    fraction = min(1.0, max(0.0, fraction))
    filled = int(round(fraction * width))
    return "[" + "█" * filled + "░" * (width - filled) + "]"


def format_metric(value: float) -> str:
    if value != value:  # NaN: a diverged run should say so, not print garbage
        return "nan"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.3e}"


def ordered_metrics(metrics: dict[str, float]) -> list[tuple[str, float]]:
    """The preferred metrics in their order, then other losses and scores by name; diagnostics
    (timings, grad norms) stay off the line."""
    first = [(n, metrics[n]) for n in PREFERRED_METRICS if n in metrics]
    rest = sorted(
        (n, v) for n, v in metrics.items()
        if n not in PREFERRED_METRICS and any(w in n.rsplit("/", 1)[-1] for w in SCORE_WORDS)
    )
    return first + rest


def format_line(run: RunState, width: int = 100) -> str:
    """One run's line, cut to ``width`` columns (metrics are dropped from the end first)."""
    epochs = f"{run.epoch}/{run.epochs}" if run.epochs else f"{run.epoch}"
    head = f"#{run.id} {run.name[:18]:<18} {bar(run.progress)} {epochs:>7} ep"
    tail = f"  {run.status}" + (f": {run.error}" if run.error else "")
    line = head
    for name, value in ordered_metrics(run.metrics):
        piece = f"  {name} {format_metric(value)}"
        if len(line) + len(piece) + len(tail) > width:
            break
        line += piece
    return (line + tail)[:width]


class LiveDisplay:
    """Draws a set of runs; call ``update`` with their newest states, ``close`` at the end."""

    def __init__(self, stream: TextIO | None = None, interactive: bool | None = None):
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self._drawn_lines = 0
        self._last_logged: dict[int, tuple[int, str]] = {}

    def _width(self) -> int:
        return max(40, shutil.get_terminal_size((100, 24)).columns - 1)

    def update(self, runs: list[RunState]) -> None:
        if self.interactive:
            # Move up over what we drew last time and redraw every line in place.
            out = "\x1b[F" * self._drawn_lines if self._drawn_lines else ""
            width = self._width()
            out += "".join("\x1b[2K" + format_line(r, width) + "\n" for r in runs)
            self.stream.write(out)
            self._drawn_lines = len(runs)
        else:
            for r in runs:
                key = (r.epoch, r.status)
                if self._last_logged.get(r.id) != key:
                    self._last_logged[r.id] = key
                    self.stream.write(format_line(r, 200) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self._drawn_lines = 0
        self.stream.flush()
