"""One experiment from claim to outcome: claim → load and validate the stored spec → load the
split → train (resuming from the last checkpoint if an earlier attempt left one) → write the
final weights → record the outcome.  Celery-free, so tests can drive it directly; the Celery
task in ``worker.tasks`` only calls :func:`run_experiment`.

Every run has a wall-clock limit, ``training.max_minutes`` capped by the instance's
``max_run_minutes`` (DESCENT_MAX_RUN_MINUTES), counted in training time: this attempt's time
since its claim plus what earlier attempts spent up to the checkpoint it resumes from (the
checkpoint records it; see ``worker.engine.stopping.TimeLimit``).  A run past it stops and fails,
saying so; its metrics so far are kept.

The database holds the state: ``claim`` lets exactly one delivery run an experiment, every
write after it is fenced by the claim's ``attempt``, and an attempt that loses its claim (its
heartbeat was too late and another worker took over) stops without writing an outcome.

A claim that cannot reach the database (stopped, restarting) raises :class:`DatabaseUnavailable`
and changes nothing: the Celery task retries the message later instead of acknowledging and
dropping it, so a run queued during an outage starts once the database is back."""

from __future__ import annotations

import copy
import logging
import os
import shutil
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import torch
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from core.spec import ExperimentSpec
from store.db import make_engine, make_sessionmaker, session_scope, unreachable
from store.repositories import experiments, metrics, splits
from worker.data import prepare
from worker.engine import Diverged, Progress, checkpoint, train
from worker.engine.range_test import range_test
from worker.engine.stopping import TimeLimit, TimeLimitExceeded
from worker.pruning import TrialPruning
from worker.sink import BatchingSink, MetricPoint

log = logging.getLogger(__name__)
T = TypeVar("T")

# how often a running training asks the database whether it was cancelled (and proves it is
# alive): a cancel stops the run at the first step or closure evaluation after the next beat, or
# (a long loop without a closure) by the engine's watchdog about a second later; a beat is one
# conditional UPDATE of one row
CANCEL_POLL_S = 0.25
# how long recording an outcome keeps retrying while the database is unreachable
FINISH_RETRY_S = 120.0


class DatabaseUnavailable(RuntimeError):
    """The claim could not reach the database; nothing was taken, so the message must be kept."""


class LostClaim(RuntimeError):
    """Another attempt owns the experiment now; this one must stop without writing."""


@dataclass
class Runtime:
    """What a worker process needs to run experiments, made once per process."""

    settings: Settings
    sessions: sessionmaker[Session]
    host: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(settings, make_sessionmaker(make_engine(settings.resolved_database_url)))


def training_device() -> tuple[torch.device, str]:
    """The device this worker trains on and how the experiment records it."""
    if torch.cuda.is_available():
        return torch.device("cuda"), f"cuda:{torch.cuda.get_device_name(0)}"
    return torch.device("cpu"), "cpu"


class Heartbeat:
    """Proves the attempt alive from a background thread, from claim to outcome (also while
    the data loads), and serves as the engine's ``should_cancel`` and ``cancel_requested``.

    Every ``interval_s`` the thread records the latest progress and learns whether a cancel was
    requested or the claim was lost; the engine's calls only read those flags, so the loop never
    waits for the database.  The progress is the last finished step's, also while one long step
    runs.  A database hiccup is logged and the next beat retries.

    It is also the engine's ``on_end``: where training ended (the last recorded step, the epochs
    completed) is written by one last beat when the heartbeat stops, after its thread has ended
    (so no beat the thread began earlier lands after it), before the outcome is recorded.  A
    finished run, succeeded, failed or cancelled, so shows the steps it ran, not the last
    periodic beat's."""

    def __init__(self, sessions: sessionmaker[Session], experiment_id: int, attempt: int, interval_s: float):
        self.sessions, self.experiment_id, self.attempt = sessions, experiment_id, attempt
        self.interval_s = interval_s
        self.progress = Progress(0, 0, 0)
        self.ended: Progress | None = None
        self.cancel_requested = False
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{experiment_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self.ended is not None:
            self.progress = self.ended
            self.beat()

    def end(self, progress: Progress) -> None:
        """The engine's ``on_end``; recorded by :meth:`__exit__`."""
        self.ended = progress

    def __call__(self, progress: Progress) -> bool:
        self.progress = progress
        if self.lost:
            raise LostClaim(f"experiment {self.experiment_id}: attempt {self.attempt} lost its claim")
        return self.cancel_requested

    def stop_requested(self) -> bool:
        """For the engine's watchdog thread: cancelled or lost, without recording progress."""
        return self.cancel_requested or self.lost

    def beat(self) -> None:
        progress = self.progress
        try:
            with session_scope(self.sessions) as session:
                result = experiments.heartbeat(
                    session, self.experiment_id, self.attempt,
                    progress=progress.fraction if progress.total_steps else 0.0, epoch=progress.epoch,
                    step=progress.step,
                )
        except Exception as exc:  # noqa: BLE001 - the database may be restarting; keep training
            log.warning("experiment %s: heartbeat failed (%s)", self.experiment_id, exc)
            return
        self.cancel_requested = result.cancel_requested
        self.lost = not result.owned and not result.cancel_requested

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat()


def _write_points(sessions: sessionmaker[Session], experiment_id: int, points: list[MetricPoint]) -> None:
    with session_scope(sessions) as session:
        metrics.add_points(session, experiment_id, points)


def _data_dir_setting() -> str:
    return f"{Settings.model_config['env_prefix']}DATA_DIR"


class CheckpointWarning:
    """The engine's ``on_checkpoint``: records on the run why its last checkpoint could not be
    written (the path, the OS error and what to do) and clears that once one is.  It writes only
    when the warning changes (and once at the first checkpoint, clearing an earlier attempt's),
    fenced by the attempt like the heartbeat; a database error is logged and the run goes on."""

    _UNKNOWN = object()

    def __init__(self, sessions: sessionmaker[Session], experiment_id: int, attempt: int):
        self.sessions, self.experiment_id, self.attempt = sessions, experiment_id, attempt
        self._stored: object = self._UNKNOWN

    def __call__(self, error: checkpoint.StorageError | None) -> None:
        warning = None
        if error is not None:
            warning = (f"checkpoint not written at {error.path}: {error.reason}; training goes on and the next "
                       f"epoch tries again; {checkpoint.remedy(error.code, _data_dir_setting())}")
            log.warning("experiment %s: %s", self.experiment_id, warning)
        if warning == self._stored:
            return
        try:
            with session_scope(self.sessions) as session:
                experiments.set_warning(session, self.experiment_id, self.attempt, warning)
        except Exception as exc:  # noqa: BLE001 - the warning is advice; the run goes on without it
            log.warning("experiment %s: recording the checkpoint warning failed (%s)", self.experiment_id, exc)
            return
        self._stored = warning


class FinalWeightsNotStored(RuntimeError):
    """The run trained but its weights could not be written; the message says where, why and what to do."""


def _save_weights(path: Path, model: torch.nn.Module) -> None:
    weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    try:
        checkpoint.write_atomically(path, weights)
    except checkpoint.StorageError as exc:
        raise FinalWeightsNotStored(
            f"could not store the final weights at {exc.path}: {exc.reason}; "
            f"{checkpoint.remedy(exc.code, _data_dir_setting())} and run it again"
        ) from exc


def _export(settings: Settings, experiment_id: int, which: str, model: torch.nn.Module, data) -> None:
    """The model with its preprocessing, for torch alone and as ONNX (``worker.export``).  An
    architecture ``torch.export`` (or ONNX) cannot take, or a refusing disk, leaves the run
    succeeded without it (the weights are stored): the log says why and the api answers 404."""
    from worker import export

    path = settings.model_path(experiment_id, "pt2", which)
    try:
        program = export.export_program(model, *data.feature_scale, data.target_scale)
        meta = export.metadata(experiment_id, data.info, data.feature_shape) | {"which": which}
        export.write_program(path, program, meta)
    except Exception:  # noqa: BLE001 - the run's result is its weights; the program is a convenience
        log.warning("experiment %s: could not export the model to %s", experiment_id, path, exc_info=True)
        return
    if not settings.export_onnx:
        return
    onnx = settings.model_path(experiment_id, "onnx", which)
    try:
        export.write_onnx(onnx, program, meta)
    except Exception as exc:  # noqa: BLE001 - an operator ONNX lacks leaves the pt2 program
        log.warning("experiment %s: no ONNX export at %s: %s", experiment_id, onnx, exc)


def _store_models(settings: Settings, experiment_id: int, result, data) -> None:
    """The last weights (``final.pt``) and both exported models, the last and the best epoch's
    (``core.settings.Settings.model_path``).  The best epoch's weights (``best.pt``) were written
    by the engine; when they are the last epoch's the exports are the same program."""
    _save_weights(settings.checkpoint_path(experiment_id, "final"), result.model)
    _export(settings, experiment_id, "last", result.model, data)
    best = settings.checkpoint_path(experiment_id, "best")
    if not best.is_file():
        return
    if result.best_epoch == result.epoch:  # the last epoch is the best: the same files under the best's names
        for format in ("pt2", "onnx"):
            last = settings.model_path(experiment_id, format, "last")
            if last.is_file():
                shutil.copyfile(last, settings.model_path(experiment_id, format, "best"))
        return
    model = copy.deepcopy(result.model)
    model.load_state_dict(torch.load(best, map_location="cpu", weights_only=True))
    _export(settings, experiment_id, "best", model, data)


def user_message(exc: BaseException) -> str:
    """The error text stored on a failed experiment: what went wrong and, where we know, what to change."""
    if isinstance(exc, Diverged | TimeLimitExceeded | FinalWeightsNotStored):
        return str(exc)
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return "out of GPU memory; try a smaller batch_size or a smaller architecture"
    if isinstance(exc, ValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return f"spec: {problems}"
    if isinstance(exc, LookupError):
        return f"missing data: {exc}"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, ValueError) else f"{type(exc).__name__}: {text}"


def retrying(write: Callable[[], T], experiment_id: int, what: str) -> T:
    """``write()`` (a database write that records an outcome), retried with backoff while the
    database is unreachable, for up to ``FINISH_RETRY_S``; then the error propagates (the run
    stays ``running`` with a stale heartbeat, and the re-send sweep gives it to another worker)."""
    deadline = time.monotonic() + FINISH_RETRY_S
    delay = 0.2
    while True:
        try:
            return write()
        except Exception:
            if time.monotonic() > deadline:
                raise
            log.warning("experiment %s: %s failed; retrying", experiment_id, what, exc_info=True)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _finish(runtime: Runtime, experiment_id: int, attempt: int, status: str, error: str | None) -> bool:
    def write() -> bool:
        with session_scope(runtime.sessions) as session:
            return experiments.finish(session, experiment_id, attempt, status, error)

    return retrying(write, experiment_id, f"recording {status}")


def time_limit(max_minutes: float | None, settings: Settings, started: float) -> TimeLimit:
    """The run's wall-clock limit: ``training.max_minutes``, at most the instance's maximum (the
    api refuses more; a spec stored before the maximum was lowered gets the maximum)."""
    instance = settings.max_run_minutes
    setting = f"{Settings.model_config['env_prefix']}MAX_RUN_MINUTES"
    if max_minutes is not None and max_minutes < instance:
        return TimeLimit(max_minutes, (
            f"the run's wall-clock limit (training.max_minutes = {max_minutes:g}, instance maximum "
            f"{setting} = {instance:g}); raise training.max_minutes or shorten the run"
        ), started)
    asked = "not set" if max_minutes is None else f"= {max_minutes:g}"
    return TimeLimit(instance, (
        f"the instance's wall-clock limit ({setting} = {instance:g}; training.max_minutes {asked}); shorten the "
        f"run (fewer epochs, a smaller model or cheaper solver settings) or ask the operator to raise {setting}"
    ), started)


def _train(experiment_id: int, stored_spec: dict, split_id: int, runtime: Runtime, device: torch.device,
           heartbeat: Heartbeat, claimed_at: float) -> str:
    settings = runtime.settings
    spec = ExperimentSpec.model_validate(stored_spec)
    limit = time_limit(spec.training.max_minutes, settings, claimed_at)
    if spec.training.device == "cuda" and device.type != "cuda":
        raise ValueError("training.device: cuda was asked for, but this worker has no GPU")
    with session_scope(runtime.sessions) as session:
        arrays = splits.load_split_arrays(session, split_id, settings)
    data = prepare(arrays, device)
    if (test := spec.training.range_test) is not None:
        # Smith's LR range test instead of training: its metrics are the result, so no checkpoint, no
        # resume (a retried attempt starts it over) and no weights; divergence is its normal end (succeeded)
        sink = BatchingSink(partial(_write_points, runtime.sessions, experiment_id))
        try:
            return range_test(spec, data, sink=sink, min_lr=test.min_lr, max_lr=test.max_lr,
                              num_steps=test.num_steps, beta=test.beta, diverge_factor=test.diverge_factor,
                              should_cancel=heartbeat, cancel_requested=heartbeat.stop_requested,
                              time_limit=limit, on_end=heartbeat.end).status
        finally:
            sink.close()
    last = settings.checkpoint_path(experiment_id, "last")
    resume = last if last.exists() else None
    if resume is None:  # a best checkpoint without a resume point belongs to nothing this attempt continues
        settings.checkpoint_path(experiment_id, "best").unlink(missing_ok=True)
    if resume is not None:
        log.info("experiment %s: resuming from %s", experiment_id, resume)
    sink = BatchingSink(partial(_write_points, runtime.sessions, experiment_id))
    warning = CheckpointWarning(runtime.sessions, experiment_id, heartbeat.attempt)
    pruning = TrialPruning(runtime.sessions, experiment_id, sink.flush)
    try:
        result = train(spec, data, sink=sink, should_cancel=heartbeat, cancel_requested=heartbeat.stop_requested,
                       time_limit=limit, checkpoint_path=last, on_checkpoint=warning, resume_from=resume,
                       best_path=settings.checkpoint_path(experiment_id, "best"),
                       on_epoch=pruning if pruning.active else None, on_end=heartbeat.end)
    finally:
        sink.close()
    if result.status == "succeeded":
        _store_models(settings, experiment_id, result, data)
        warning(None)
    if result.stop_reason is not None:  # early stopping, or a study's pruner
        retrying(partial(_set_stop_reason, runtime, experiment_id, heartbeat.attempt, result.stop_reason),
                 experiment_id, "recording why it stopped")  # the weights are stored: a checkpoint missed on the way no longer matters
    return result.status


def _set_stop_reason(runtime: Runtime, experiment_id: int, attempt: int, reason: str) -> None:
    with session_scope(runtime.sessions) as session:
        experiments.set_stop_reason(session, experiment_id, attempt, reason)


def _claim(runtime: Runtime, experiment_id: int, device_name: str) -> tuple[int, dict, int] | None:
    """``(attempt, spec, split_id)`` of the claimed experiment, or None when it is not claimable."""
    with session_scope(runtime.sessions) as session:
        claimed = experiments.claim(session, experiment_id, runtime.host, device_name,
                                    runtime.settings.stale_heartbeat_s)
        return None if claimed is None else (claimed.attempt, claimed.spec, claimed.split_id)


def train_claimed(experiment_id: int, attempt: int, stored_spec: dict, split_id: int, runtime: Runtime,
                  claimed_at: float, *, cancel_poll_s: float = CANCEL_POLL_S) -> tuple[str, str | None]:
    """Train an attempt already claimed; returns ``(status, error)`` to record, or ``("lost",
    None)`` when another attempt took the run over (nothing may be recorded then).  What the
    supervised training process runs (``worker.child``)."""
    device, _ = training_device()
    with Heartbeat(runtime.sessions, experiment_id, attempt,
                   min(cancel_poll_s, runtime.settings.heartbeat_s)) as heartbeat:
        try:
            return _train(experiment_id, stored_spec, split_id, runtime, device, heartbeat, claimed_at), None
        except LostClaim as exc:
            log.warning("%s; stopping without recording an outcome", exc)
            return "lost", None
        except Exception as exc:  # noqa: BLE001 - every failure becomes the experiment's error text
            error = user_message(exc)
            log.error("experiment %s failed: %s\n%s", experiment_id, error, traceback.format_exc())
            return "failed", error


@dataclass(frozen=True)
class Claimed:
    attempt: int
    spec: dict
    split_id: int
    claimed_at: float  # time.monotonic() at the claim: this attempt's training time counts from here


def claim(experiment_id: int, runtime: Runtime) -> Claimed | None:
    """Claim ``experiment_id`` for this worker: None when it is not claimable (a duplicate
    delivery, a finished run); :class:`DatabaseUnavailable` when the database is unreachable."""
    _, device_name = training_device()
    claimed_at = time.monotonic()
    try:
        claimed = _claim(runtime, experiment_id, device_name)
    except Exception as exc:
        if unreachable(exc):
            raise DatabaseUnavailable(f"experiment {experiment_id}: the database is unreachable, "
                                      f"nothing claimed ({str(exc).splitlines()[0]})") from exc
        raise
    if claimed is None:
        log.info("experiment %s: not claimable (duplicate delivery or finished); skipping", experiment_id)
        return None
    log.info("experiment %s: attempt %s on %s", experiment_id, claimed[0], device_name)
    return Claimed(*claimed, claimed_at=claimed_at)


def record_outcome(runtime: Runtime, experiment_id: int, attempt: int, status: str, error: str | None) -> str:
    """Record the attempt's outcome; returns ``status``, or ``lost`` when the attempt no longer owns the run."""
    if status == "lost":
        return "lost"
    if not _finish(runtime, experiment_id, attempt, status, error):
        log.warning("experiment %s: attempt %s no longer owns it; outcome %s not recorded", experiment_id, attempt, status)
        return "lost"
    return status


def run_experiment(experiment_id: int, runtime: Runtime, *, cancel_poll_s: float = CANCEL_POLL_S) -> str:
    """Claim and train experiment ``experiment_id`` in this process; returns what happened:
    ``skipped`` (not claimable: a duplicate delivery), ``lost`` (another attempt took over), or
    the final status.  Raises :class:`DatabaseUnavailable` when the claim could not reach the
    database.  Workers run training in a supervised child process instead (``worker.supervisor``)."""
    claimed = claim(experiment_id, runtime)
    if claimed is None:
        return "skipped"
    status, error = train_claimed(experiment_id, claimed.attempt, claimed.spec, claimed.split_id, runtime,
                                  claimed.claimed_at, cancel_poll_s=cancel_poll_s)
    return record_outcome(runtime, experiment_id, claimed.attempt, status, error)
