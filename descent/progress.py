"""Live progress of followed experiments, drawn by rich.

On a terminal every followed run has one line, redrawn in place (rich's ``Live``):

    #12 adam-iris  ━━━━━━━━━━━━╸━━━━━━━  60%  epoch 3/5  step 120  running  train/loss 0.412  val/accuracy 0.933
    #13 sgd-iris   ━━━━━━━━━━━━━━━━━━━━   0%  epoch 0/5  step 0    queued: all 1 workers on the 'cpu' queue are busy; ...

A queued run says why it waits, as the api's ``/queue`` reads it.  Piped into a file or a CI log,
a plain line (no ANSI codes) is printed only when a run's epoch, status or reason changes, so the
log reads as a history instead of a wall of redraws."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from core.metrics import is_diagnostic
from core.statuses import FINISHED
from descent.client import ApiError, Client

BAR_WIDTH = 20
LINE_METRICS = ("train/loss", "val/", "test/")  # the metrics a line shows, by name prefix, in this order
STATUS_STYLES = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "queued": "dim"}


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
    step: int = 0
    waiting: str | None = None  # why a queued run waits, in the api's words

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def format_metric(value: float) -> str:
    if value != value:  # NaN: a diverged run should say so, not print garbage
        return "nan"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.3e}"


def ordered_metrics(metrics: dict[str, float]) -> list[tuple[str, float]]:
    """``train/loss``, then the validation metrics (``val/loss`` first), then the test ones;
    diagnostics (lr, grad_norm, timings) and the other epoch metrics stay off the line."""
    def group(name: str) -> int | None:
        return next((i for i, prefix in enumerate(LINE_METRICS) if name.startswith(prefix)), None)

    shown = [n for n in metrics if group(n) is not None and not is_diagnostic(n)]
    return [(n, metrics[n]) for n in sorted(shown, key=lambda n: (group(n), n != "val/loss", n))]


def status_text(run: RunState) -> str:
    if run.status == "queued" and run.waiting:
        return f"queued: {run.waiting}"
    return run.status + (f": {run.error}" if run.error else "")


def position_text(run: RunState) -> str:
    return f"epoch {run.epoch}/{run.epochs}  step {run.step}" if run.epochs else f"epoch {run.epoch}  step {run.step}"


def format_line(run: RunState, width: int = 200) -> str:
    """One run's plain line for a log, cut to ``width`` columns (metrics are dropped from the end
    first, the status stays last)."""
    line = f"#{run.id} {run.name}  {100 * min(1.0, max(0.0, run.progress)):3.0f}%  {position_text(run)}"
    tail = f"  {status_text(run)}"
    for name, value in ordered_metrics(run.metrics):
        piece = f"  {name} {format_metric(value)}"
        if len(line) + len(piece) + len(tail) > width:
            break
        line += piece
    return (line + tail)[:width]


def render(runs: list[RunState]) -> Group:
    """The terminal's view: a grid row per run, the status and metrics cut with an ellipsis to fit."""
    grid = Table.grid(padding=(0, 1), expand=True)
    grid.add_column(no_wrap=True, max_width=32, overflow="ellipsis")
    grid.add_column(width=BAR_WIDTH)
    grid.add_column(no_wrap=True, justify="right")
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    for run in runs:
        metrics = "  ".join(f"{n} {format_metric(v)}" for n, v in ordered_metrics(run.metrics))
        grid.add_row(
            Text(f"#{run.id} {run.name}", style="bold"),
            ProgressBar(total=1.0, completed=min(1.0, max(0.0, run.progress)), width=BAR_WIDTH),
            Text(f"{100 * min(1.0, max(0.0, run.progress)):.0f}%"),
            Text(position_text(run)),
            Text.assemble((status_text(run), STATUS_STYLES.get(run.status, "cyan")), "  ", metrics),
        )
    return Group(grid)


def waiting_reasons(client: Client, runs: list[RunState]) -> list[RunState]:
    """Sets each queued run's ``waiting`` from the api's ``/queue`` (one request, only while a run
    is queued); an api that cannot answer leaves the line saying just "queued"."""
    queued = [r for r in runs if r.status == "queued"]
    if queued:
        try:
            reasons = {w["id"]: w["reason"] for w in client.queue()["waiting"]}
        except (ApiError, httpx.HTTPError):
            reasons = {}
        for run in queued:
            run.waiting = reasons.get(run.id)
    return runs


class LiveDisplay:
    """Draws a set of runs; call ``update`` with their newest states, ``close`` at the end."""

    def __init__(self, stream: TextIO | None = None, interactive: bool | None = None):
        self.stream = stream or sys.stdout
        self.console = Console(file=self.stream, force_terminal=interactive, highlight=False)
        self.interactive = self.console.is_terminal if interactive is None else interactive
        self._live: Live | None = None
        self._last_logged: dict[int, tuple[int, str]] = {}

    def update(self, runs: list[RunState]) -> None:
        if self.interactive:
            if self._live is None:
                self._live = Live(console=self.console, auto_refresh=False, redirect_stdout=False,
                                  redirect_stderr=False)
                self._live.start()
            self._live.update(render(runs), refresh=True)
            return
        for r in runs:
            key = (r.epoch, status_text(r))
            if self._last_logged.get(r.id) != key:
                self._last_logged[r.id] = key
                self.stream.write(format_line(r) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.stream.flush()
