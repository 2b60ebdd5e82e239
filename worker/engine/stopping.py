"""Stopping a run on time: a cancel, a lost claim or the run's wall-clock limit is honoured within
about a second, also in the middle of one long optimizer step.

Three layers, the cheapest first:

1. before every step, :func:`~worker.engine.loop.train` runs a :class:`StopCheck`;
2. the same check runs at every closure evaluation (L-BFGS's iterations, random search's
   candidates, Newton's damping tries), so a stop raises :class:`StopTraining` out of the step;
3. for loops that never call the closure (Hessian-free's conjugate gradient, Shampoo's matrix
   roots) a :class:`Watchdog` thread: once a stop has been wanted for ``grace_s`` and the
   training thread is still inside a region its :class:`Interrupter` marks (the optimizer step
   and the evaluations, never metric, checkpoint or database writes), it raises
   :class:`StopTraining` in that thread asynchronously (``PyThreadState_SetAsyncExc``).

The asynchronous exception is the last resort, and guarded: it is sent only inside a marked
region, at most once per region, under a lock the training thread takes to leave the region, and
one sent but not yet raised when the region ends is withdrawn and raised synchronously by the
region's exit instead, so it never surfaces in the code after the region.  What it may tear
(the model and optimizer mid-update, a context manager's exit skipped) belongs to a run that
is ending without a checkpoint; ``train`` restores the thread's grad mode and torch-function
mode stack, the state that outlives a run.  It arrives at the next bytecode the thread runs: one
long native call (a huge matrix product) still finishes first.  What needs no cooperation at all
is one level up: the worker's supervisor (``worker.supervisor``) kills the training process when
a stop has gone unhonoured for its grace period."""

from __future__ import annotations

import ctypes
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger(__name__)

# how long a wanted stop may go unhonoured before the watchdog interrupts the step, and how
# often it looks
GRACE_S = 1.0
POLL_S = 0.1


class StopTraining(BaseException):
    """Ends the run now, raised in the training thread by a :class:`StopCheck` or a
    :class:`Watchdog`; ``train`` turns it into a cancelled result or a :class:`TimeLimitExceeded`.
    A ``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception`` on its way
    up swallows it."""


class TimeLimitExceeded(RuntimeError):
    """The run trained past its wall-clock limit; the text says how long and what to change."""


@dataclass
class TimeLimit:
    """A run's wall-clock budget in minutes of training time (``math.inf``: none).

    Training time is this attempt's time since ``started`` (a ``time.monotonic`` reading, taken
    when the attempt began) plus ``spent_before_s``, which ``train`` reads from the checkpoint it
    resumes from: time earlier attempts spent reaching it.  A dead attempt's time after its last
    checkpoint is not counted, since that part is trained again; time queued or waiting for a
    dead worker to be noticed is not training time.  ``explanation`` completes the error text:
    which limit applied and what to change."""

    minutes: float
    explanation: str = ""
    started: float = field(default_factory=time.monotonic)
    spent_before_s: float = 0.0

    def spent_s(self) -> float:
        return self.spent_before_s + (time.monotonic() - self.started)

    def exceeded(self) -> bool:
        return self.spent_s() >= self.minutes * 60.0

    def error(self) -> TimeLimitExceeded:
        minutes = self.spent_s() / 60.0
        text = f"stopped after {minutes:.1f} minutes" if minutes >= 1 else f"stopped after {minutes:.2f} minutes"
        return TimeLimitExceeded(f"{text}: {self.explanation}" if self.explanation else text)


@dataclass
class StopCheck:
    """The engine's question "stop now?", asked before every step and at every closure
    evaluation; a yes raises :class:`StopTraining` and remembers why.

    ``should_cancel(progress)`` is the caller's per-step check (it may record the progress, or
    raise to abort); ``cancel_requested()`` asks the same without progress from the watchdog
    thread, so it must be thread-safe and cheap (a flag read)."""

    should_cancel: Callable[[Any], bool]
    cancel_requested: Callable[[], bool] | None = None
    time_limit: TimeLimit = field(default_factory=lambda: TimeLimit(math.inf))
    reason: Literal["cancelled", "time_limit"] | None = None
    progress: Any = None

    def __call__(self, progress) -> None:
        self.progress = progress
        if self.should_cancel(progress):
            self.reason = "cancelled"
            raise StopTraining
        if self.time_limit.exceeded():
            self.reason = "time_limit"
            raise StopTraining

    @property
    def watched(self) -> bool:
        """Whether a watchdog has anything to watch."""
        return self.cancel_requested is not None or math.isfinite(self.time_limit.minutes)

    def wanted(self) -> bool:
        """For the watchdog thread: whether a stop is wanted now."""
        return bool(self.cancel_requested is not None and self.cancel_requested()) or self.time_limit.exceeded()

    def why(self) -> Literal["cancelled", "time_limit"]:
        """Why the run stopped; for a stop the watchdog sent, asks again (``should_cancel`` may
        raise here, e.g. for a lost claim)."""
        if self.reason is None:
            if self.cancel_requested is not None and self.cancel_requested():
                self.should_cancel(self.progress)
                self.reason = "cancelled"
            else:
                self.reason = "time_limit" if self.time_limit.exceeded() else "cancelled"
        return self.reason


def _async_raise(thread_id: int, exc: type[BaseException] | None) -> int:
    """Make ``thread_id`` raise ``exc`` at its next bytecode (``None``: withdraw a pending one);
    returns how many threads were touched."""
    # ctypes passes None as NULL, which withdraws; py_object(None) would pass Py_None
    target = ctypes.py_object(exc) if exc is not None else None
    touched = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), target)
    if touched > 1:  # cannot happen for a live thread id; undo rather than hit a stranger
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
        raise SystemError(f"PyThreadState_SetAsyncExc touched {touched} threads")
    return touched


class Interrupter:
    """Marks the regions in which the training thread (the one that made it) may be stopped
    asynchronously: ``with interrupter: ...``.  :meth:`interrupt`, from another thread, raises
    :class:`StopTraining` in it, but only while it is inside a region."""

    def __init__(self) -> None:
        self.thread_id = threading.get_ident()
        self._lock = threading.Lock()
        self._inside = False
        self._sent = False

    @property
    def inside(self) -> bool:
        return self._inside

    def __enter__(self) -> Interrupter:
        with self._lock:
            if self._sent:  # raised in the last region's __exit__ before leave() could clear the mark
                _async_raise(self.thread_id, None)
                self._sent = False
            self._inside = True
        return self

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        if self.leave() and not (exc_type is not None and issubclass(exc_type, StopTraining)):
            raise StopTraining  # sent while the region was ending: honour it here, not after
        return False

    def leave(self) -> bool:
        """Mark the thread outside any region and withdraw an exception sent but not yet raised;
        returns whether one had been sent.  The training thread calls it when a region ends and
        after a stop (a region left by an exception raised in its ``__enter__``)."""
        with self._lock:
            self._inside = False
            sent, self._sent = self._sent, False
        if sent:
            _async_raise(self.thread_id, None)
        return sent

    def interrupt(self) -> bool:
        """Raise :class:`StopTraining` in the training thread if it is inside a region and none
        was sent there yet; returns whether it was sent."""
        with self._lock:
            if not self._inside or self._sent:
                return False
            self._sent = _async_raise(self.thread_id, StopTraining) == 1
            return self._sent


class Watchdog:
    """A daemon thread for the span of ``with``: every ``poll_s`` it asks ``wanted()``; once a stop
    has been wanted for ``grace_s`` (time for the training thread to stop by itself, at a step or
    a closure evaluation) it interrupts the training thread through ``interrupter``, and keeps
    trying while the thread is outside a marked region."""

    def __init__(self, wanted: Callable[[], bool], interrupter: Interrupter, *, grace_s: float = GRACE_S,
                 poll_s: float = POLL_S):
        self.wanted, self.interrupter = wanted, interrupter
        self.grace_s, self.poll_s = grace_s, poll_s
        self.interrupts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="training-watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        wanted_since: float | None = None
        while not self._stop.wait(self.poll_s):
            try:
                wanted = self.wanted()
            except Exception:  # noqa: BLE001 - a failing check must not end the watch
                log.warning("stop check failed in the watchdog", exc_info=True)
                continue
            if not wanted:
                wanted_since = None
                continue
            now = time.monotonic()
            wanted_since = now if wanted_since is None else wanted_since
            if now - wanted_since >= self.grace_s and not self._stop.is_set() and self.interrupter.interrupt():
                self.interrupts += 1
                log.warning("the training thread did not stop within %.1f s; interrupting its step", self.grace_s)
