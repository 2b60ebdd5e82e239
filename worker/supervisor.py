"""Training in a supervised child process (the way Determined's and Airflow's task runners do):
the Celery worker process claims the run, starts ``python -m worker.child`` to train it, watches
it, and records how it ended.  Whatever the training does to its process — the kernel's OOM
killer, a crash in native code, a hang — the worker survives it and takes the next run at once.

While the training process lives, the supervisor proves the attempt alive itself (``keepalive``,
every ``KEEPALIVE_S``; the training process records the progress) and enforces what needs no
cooperation: a cancel, a lost claim or the run's wall-clock limit that the training process has
not honoured within ``kill_grace_s`` (it normally stops within about a second; see
``worker.engine.stopping``) is ended with SIGKILL, and the supervisor records the outcome.

A training process that ends without reporting an outcome died: the supervisor counts it on the
run (``crashes``) and says why — the exit status, the signal, and for SIGKILL whether the memory
cgroup's OOM killer struck (``worker.oom``), with the model's memory by estimate
(``core.spec.budget``).  Below ``max_attempts`` (DESCENT_MAX_ATTEMPTS, default 2) deaths it
starts the training again at once, resuming from the last checkpoint; at ``max_attempts`` the run
fails with that reason instead of being tried again (before, a run that killed its worker was
re-sent to the next worker, which died too, while the run showed ``running 0%``)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from core.settings import Settings
from core.spec import ExperimentSpec, budget
from store.db import session_scope
from store.repositories import experiments, splits
from worker.run import CANCEL_POLL_S, Claimed, Runtime, claim, record_outcome, retrying, time_limit

log = logging.getLogger(__name__)

# how long a cancel, lost claim or time limit may go unhonoured before the training process is killed
KILL_GRACE_S = 10.0
# how often the supervisor looks at its training process, and proves the attempt alive
WATCH_S = 0.1
KEEPALIVE_S = 1.0


@dataclass(frozen=True)
class Death:
    """How a training process ended without reporting an outcome: its return code (negative: the
    signal that killed it) and whether the memory cgroup's OOM-kill counter rose meanwhile
    (None: no counter readable)."""

    returncode: int
    oom_killed: bool | None = None

    @property
    def memory(self) -> bool:
        """Whether memory may be the cause: a SIGKILL the supervisor did not send is what the
        kernel's OOM killer sends (its cgroup's counter tells only a cgroup's own OOM kills)."""
        return self.returncode == -signal.SIGKILL

    def reason(self, needs: str | None = None) -> str:
        """What happened, in words; ``needs``: the run's memory by estimate, named for a SIGKILL."""
        code = self.returncode
        if code == -signal.SIGKILL:
            if self.oom_killed:
                text = "the training process was killed by the operating system because it ran out of memory " \
                       "(its memory cgroup's OOM killer)"
            elif self.oom_killed is None:
                text = "the training process was killed by the operating system (SIGKILL), most likely because " \
                       "it ran out of memory"
            else:
                text = "the training process was killed (SIGKILL), not by its memory cgroup's OOM killer: by " \
                       "another process, or by the system-wide OOM killer when the machine ran out of memory"
            return f"{text}; training it needs {needs} by estimate" if needs else text
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            native = " (a crash in native code)" if -code in (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL) else ""
            return f"the training process died of {name}{native}"
        return f"the training process exited with status {code} without reporting an outcome"

    def advice(self) -> str:
        if self.memory:
            return ("if memory is short, choose a smaller architecture or training.batch_size, a solver that keeps "
                    "less state, or run it on a worker with more memory")
        return "the worker's log has the training process's last words; fix the cause and run it again"


@dataclass(frozen=True)
class Ended:
    """What one training process came to: an outcome to record, or a :class:`Death`."""

    status: str | None = None
    error: str | None = None
    death: Death | None = None


def _start_training_process() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "worker.child"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)


class Spare:
    """One training process started ahead of need: its imports (torch, ~3 s) are done by the time
    a run is claimed, so the run starts at once.  Taking it starts the next spare."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._owner = os.getpid()
        self._lock = threading.Lock()

    def _waiting(self) -> subprocess.Popen | None:
        if self._owner != os.getpid():  # inherited through a fork: that spare is another process's child
            self._process, self._owner = None, os.getpid()
        if self._process is not None and self._process.poll() is not None:
            self._process = None
        return self._process

    def warm(self) -> None:
        """Start a spare if none is waiting (at worker start)."""
        with self._lock:
            if self._waiting() is None:
                self._process = _start_training_process()

    def take(self) -> subprocess.Popen:
        with self._lock:
            process = self._waiting() or _start_training_process()
            self._process = _start_training_process()
            return process


# this worker process's spare training process
SPARE = Spare()


class TrainingProcess:
    """One ``python -m worker.child`` for one attempt: given its job on stdin, read for its
    outcome line on stdout (in a thread, so the supervisor never blocks on it)."""

    def __init__(self, job: dict, process: subprocess.Popen | None = None):
        from worker.oom import oom_kills

        self._oom_kills = oom_kills
        self.oom_before = oom_kills()
        self.process = process if process is not None else _start_training_process()
        self.pid = self.process.pid
        self.outcome: dict | None = None
        self._reader = threading.Thread(target=self._read, name=f"training-{self.pid}", daemon=True)
        self._reader.start()
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(job).encode())
            self.process.stdin.close()
        except OSError:  # it died before reading its job: poll() says how
            pass

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                self.outcome = json.loads(line)
            except ValueError:
                log.warning("training process %s wrote %r instead of an outcome", self.pid, line[:200])

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.kill()

    def ended(self) -> Ended:
        """After it exited: its outcome, or how it died."""
        self.process.wait()
        self._reader.join(timeout=5)
        if self.outcome is not None and "status" in self.outcome:
            return Ended(self.outcome["status"], self.outcome.get("error"))
        after = self._oom_kills()
        rose = None if self.oom_before is None or after is None else after > self.oom_before
        return Ended(death=Death(self.process.returncode, rose))


def _job(experiment_id: int, claimed: Claimed, runtime: Runtime, cancel_poll_s: float) -> dict:
    return {
        "experiment_id": experiment_id, "attempt": claimed.attempt, "spec": claimed.spec,
        "split_id": claimed.split_id, "claimed_at": claimed.claimed_at, "host": runtime.host,
        "settings": runtime.settings.model_dump(mode="json"), "cancel_poll_s": cancel_poll_s,
    }


def _max_minutes(stored_spec: dict) -> float | None:
    training = stored_spec.get("training") or {}
    return training.get("max_minutes")


def watch(training: TrainingProcess, runtime: Runtime, experiment_id: int, claimed: Claimed,
          kill_grace_s: float) -> Ended:
    """Wait for ``training`` to end, proving the attempt alive meanwhile; kill it when a cancel,
    a lost claim or the run's time limit goes unhonoured for ``kill_grace_s``."""
    limit = time_limit(_max_minutes(claimed.spec), runtime.settings, claimed.claimed_at)
    keepalive_s = min(KEEPALIVE_S, runtime.settings.heartbeat_s)
    next_beat = 0.0
    wanted: tuple[float, Ended] | None = None  # when a stop was first wanted, and what to record if we kill
    killed: Ended | None = None
    while training.alive():
        now = time.monotonic()
        if now >= next_beat:
            next_beat = now + keepalive_s
            beat = _keepalive(runtime, experiment_id, claimed.attempt)
            if beat is not None and wanted is None and (beat.cancel_requested or not beat.owned):
                wanted = (now, Ended("cancelled") if beat.owned else Ended("lost"))
        if wanted is None and limit.spent_s() >= limit.minutes * 60.0:
            wanted = (now, Ended("failed", str(limit.error())))
        if wanted is not None and now - wanted[0] >= kill_grace_s and killed is None:
            log.warning("experiment %s: the training process %s did not stop within %.0f s; killing it",
                        experiment_id, training.pid, kill_grace_s)
            training.kill()
            killed = wanted[1]
        time.sleep(WATCH_S)
    ended = training.ended()
    if killed is not None and ended.death is not None:
        return killed
    return ended


def _keepalive(runtime: Runtime, experiment_id: int, attempt: int) -> experiments.HeartbeatResult | None:
    try:
        with session_scope(runtime.sessions) as session:
            return experiments.keepalive(session, experiment_id, attempt)
    except Exception as exc:  # noqa: BLE001 - the database may be restarting; the next beat retries
        log.warning("experiment %s: keepalive failed (%s)", experiment_id, exc)
        return None


def _needs(runtime: Runtime, stored_spec: dict, split_id: int) -> str | None:
    """The run's training memory by estimate, in words (None when it cannot be worked out)."""
    try:
        spec = ExperimentSpec.model_validate(stored_spec)
        with session_scope(runtime.sessions) as session:
            split = splits.get(session, split_id)
            info, _ = splits.dataset_of(session, split, runtime.settings)
            n_train = len(split.train_indices)
        return budget.run_estimate(spec, info, n_train).describe()
    except Exception:  # noqa: BLE001 - the estimate only adds to the message
        log.warning("could not estimate the memory of a run's spec", exc_info=True)
        return None


def _setting(name: str) -> str:
    return f"{Settings.model_config['env_prefix']}{name}"


def supervise(experiment_id: int, runtime: Runtime, *, kill_grace_s: float = KILL_GRACE_S,
              cancel_poll_s: float = CANCEL_POLL_S) -> str:
    """Claim experiment ``experiment_id`` and train it in a supervised training process; returns
    what happened, like :func:`worker.run.run_experiment` (``skipped``, ``lost`` or the final
    status).  Raises ``DatabaseUnavailable`` when the claim could not reach the database."""
    claimed = claim(experiment_id, runtime)
    if claimed is None:
        return "skipped"
    max_attempts = runtime.settings.max_attempts
    while True:
        training = TrainingProcess(_job(experiment_id, claimed, runtime, cancel_poll_s), SPARE.take())
        log.info("experiment %s: training in process %s", experiment_id, training.pid)
        ended = watch(training, runtime, experiment_id, claimed, kill_grace_s)
        if ended.death is None:
            return record_outcome(runtime, experiment_id, claimed.attempt, ended.status or "failed", ended.error)
        death = ended.death
        needs = _needs(runtime, claimed.spec, claimed.split_id) if death.memory else None
        reason = death.reason(needs)
        crashes = retrying(lambda: _record_crash(runtime, experiment_id, claimed.attempt), experiment_id,
                           "recording a training process's death")
        if crashes is None:
            log.warning("experiment %s: %s; attempt %s no longer owns the run", experiment_id, reason, claimed.attempt)
            return "lost"
        if crashes >= max_attempts:
            times = "once" if crashes == 1 else f"{crashes} times"
            error = (f"{reason} ({times}; {_setting('MAX_ATTEMPTS')} = {max_attempts}, so it is not tried again); "
                     f"{death.advice()}")
            log.error("experiment %s: %s", experiment_id, error)
            return record_outcome(runtime, experiment_id, claimed.attempt, "failed", error)
        log.warning("experiment %s: %s (%d of %d); training again from the last checkpoint",
                    experiment_id, reason, crashes, max_attempts)
        _warn(runtime, experiment_id, claimed.attempt,
              f"{reason} ({crashes} of {max_attempts} tries); it trains again from its last checkpoint")


def _record_crash(runtime: Runtime, experiment_id: int, attempt: int) -> int | None:
    with session_scope(runtime.sessions) as session:
        return experiments.record_crash(session, experiment_id, attempt)


def _warn(runtime: Runtime, experiment_id: int, attempt: int, warning: str) -> None:
    try:
        with session_scope(runtime.sessions) as session:
            experiments.set_warning(session, experiment_id, attempt, warning)
    except Exception:  # noqa: BLE001 - advice only
        log.warning("experiment %s: could not record the warning", experiment_id, exc_info=True)

