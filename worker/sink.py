"""Where the engine's metrics go.  The engine only knows :class:`MetricSink`; the worker hands it
a :class:`BatchingSink` that writes to the database in the background, tests a :class:`ListSink`.

A :class:`BatchingSink` buffers points and writes them every ``max_points`` points or
``max_delay_s`` seconds from a background thread, so the training loop never waits for the
database; while the database is unreachable it retries with exponential backoff and keeps the
points; ``close()`` flushes what is left.  Writes must be idempotent by (experiment, name,
step), so a retried batch or a run resumed from a checkpoint never counts a point twice."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

log = logging.getLogger(__name__)


class MetricPoint(NamedTuple):
    name: str
    step: int
    epoch: int
    value: float
    wall_time: float


class MetricSink(Protocol):
    def add(self, points: Sequence[MetricPoint]) -> None: ...

    def flush(self) -> None:
        """Return once every point added so far is stored (the engine calls it before each
        checkpoint, so a checkpoint never claims steps whose metrics could still be lost)."""


class ListSink:
    """Keeps every point in memory (tests, benchmarks)."""

    def __init__(self) -> None:
        self.points: list[MetricPoint] = []

    def add(self, points: Sequence[MetricPoint]) -> None:
        self.points.extend(points)

    def flush(self) -> None:
        pass

    def series(self, name: str) -> list[tuple[int, float]]:
        return [(p.step, p.value) for p in self.points if p.name == name]


class SinkClosed(RuntimeError):
    pass


class BatchingSink:
    """Buffers points and hands them to ``write`` in batches from a background thread.

    Args:
        write: stores a batch; must be idempotent by (name, step).  Any exception is treated
            as "database unreachable": the batch is kept and retried after a backoff.
        max_points: write as soon as this many points are waiting.
        max_delay_s: write points at most this long after they arrive.
        backoff_s, max_backoff_s: first and largest pause between failed attempts.
        close_timeout_s: how long :meth:`close` keeps retrying before it gives up and raises.
    """

    def __init__(
        self, write: Callable[[list[MetricPoint]], None], *, max_points: int = 5000, max_delay_s: float = 1.0,
        backoff_s: float = 0.1, max_backoff_s: float = 5.0, close_timeout_s: float = 120.0,
    ) -> None:
        self._write = write
        self.max_points = max_points
        self.max_delay_s = max_delay_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.close_timeout_s = close_timeout_s
        self._buffer: list[MetricPoint] = []
        self._cond = threading.Condition()
        self._closing = False
        self._closed = False
        self.failures = 0
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="metric-sink", daemon=True)
        self._thread.start()

    def add(self, points: Sequence[MetricPoint]) -> None:
        with self._cond:
            if self._closed:
                raise SinkClosed("metric sink is closed")
            was_empty = not self._buffer
            self._buffer.extend(points)
            if was_empty or len(self._buffer) >= self.max_points:
                self._cond.notify()  # the writer sleeps until points arrive, then until they are due

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every point added so far is written (or ``timeout_s`` passes: TimeoutError)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            self._flush_requested = True
            self._cond.notify()
            while self._buffer or self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"{len(self._buffer) + self._in_flight} metric points not written")
                self._cond.wait(timeout=left if left is not None else 0.5)

    def close(self) -> None:
        """Write everything left, then stop the thread; raises TimeoutError if the database
        stayed unreachable for ``close_timeout_s``."""
        with self._cond:
            if self._closed:
                return
            self._closing = True
            self._cond.notify()
        self._thread.join(self.close_timeout_s)
        with self._cond:
            self._closed = True
            left = len(self._buffer) + self._in_flight
            self._closing = True
            self._cond.notify_all()
        if left:
            raise TimeoutError(f"{left} metric points could not be written within {self.close_timeout_s} s")

    def __enter__(self) -> BatchingSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    _in_flight = 0
    _flush_requested = False

    def _run(self) -> None:
        oldest: float | None = None
        delay = self.backoff_s
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    if self._buffer and oldest is None:
                        oldest = time.monotonic()
                    due = oldest is not None and time.monotonic() - oldest >= self.max_delay_s
                    if self._buffer and (
                        due or self._closing or self._flush_requested or len(self._buffer) >= self.max_points
                    ):
                        break
                    if self._closing and not self._buffer:
                        return
                    wait = None if oldest is None else max(0.0, self.max_delay_s - (time.monotonic() - oldest))
                    self._cond.wait(timeout=wait)
                batch, self._buffer = self._buffer, []
                self._in_flight = len(batch)
                self._flush_requested = False
            try:
                self._write(batch)
            except Exception as exc:  # noqa: BLE001 - every failure means "try again later"
                self.failures += 1
                log.warning("metric write of %d points failed (%s); retrying in %.1f s", len(batch), exc, delay)
                with self._cond:
                    self._buffer[:0] = batch
                    self._in_flight = 0
                    self._cond.notify_all()
                    self._cond.wait(timeout=delay)  # close() wakes us early, then we retry at once
                    if self._closed:  # close() gave up waiting
                        return
                delay = min(delay * 2, self.max_backoff_s)
                continue
            delay = self.backoff_s
            with self._cond:
                self.written += len(batch)
                self._in_flight = 0
                oldest = time.monotonic() if self._buffer else None
                self._cond.notify_all()
