"""The worker's Celery app: ``python -m celery -A worker.celery_app worker -Q cpu --pool solo``
(or ``descent worker``).  Configuration comes from ``core.queue`` (shared with the api: JSON
only, late acks, prefetch 1, redelivery when a worker is lost, a Redis visibility timeout longer
than the longest run); the database, not a result backend, holds job state.

Next to the tasks, every worker process runs a :class:`worker.presence.Presence` thread: it
beats the ``workers`` table (the api routes ``device: auto`` to ``gpu`` only while a GPU worker
is alive) and re-sends experiments whose message may have been lost (a broker restarted
without persistence, a worker killed mid-run), and the process that runs tasks starts a spare
training process (``worker.supervisor.Spare``) so that its first run starts without waiting for torch
to import (a worker serving only the ``lab`` queue warms up torch for races instead: its jobs run in
the process itself).  A training worker also builds the fused optimizer kernel (``optim._fused``) in a
thread at start-up, or loads it when the machine has it built: runs take the fused step by default
only once it is on disk (``worker.engine.fused_default``), so no run waits for the compiler."""

from __future__ import annotations

import logging
import threading
import time

from celery import signals

from core.queue import LAB_QUEUE, make_celery
from core.settings import Settings

# the worker process reads its settings once; the task and the presence thread share them
settings = Settings()
app = make_celery(settings, name="descent-worker")
app.conf.update(include=["worker.tasks", "worker.lab.tasks"], worker_cancel_long_running_tasks_on_connection_loss=False)

log = logging.getLogger(__name__)
_presence = None
_trains = True


@signals.worker_ready.connect
def _start_presence(sender=None, **_) -> None:
    global _presence
    from worker.presence import Presence

    queues = sorted(q.name for q in sender.task_consumer.queues) if sender is not None else ["cpu"]
    _presence = Presence.start(app, queues, settings)
    global _trains
    _trains = set(queues) != {LAB_QUEUE}  # a lab-only worker runs short jobs in-process: no spare to warm
    if _trains and type(getattr(sender, "pool", None)).__module__.endswith(".solo"):  # tasks run in this process
        _warm_spare()
    if _trains:  # the first build takes a core for up to a minute; runs meanwhile take the default path
        threading.Thread(target=_warm_fused, name="descent-fused-build", daemon=True).start()
    if not _trains:  # a race's first step would otherwise import torch's compiler front end (seconds)
        threading.Thread(target=_warm_lab, name="descent-lab-warm-up", daemon=True).start()


@signals.worker_process_init.connect
def _warm_pool_process(**_) -> None:
    if _trains:
        _warm_spare()  # a prefork pool process runs tasks: its own spare training process


def _warm_lab() -> None:
    from worker.lab.race import warm_up

    try:
        log.info("lab worker warmed up in %.1f s", warm_up())
    except Exception:  # noqa: BLE001 - a failed warm-up only costs the first race its time
        log.warning("lab worker warm-up failed", exc_info=True)


def _warm_fused() -> None:
    from optim import _fused

    started = time.perf_counter()
    if _fused.warm():
        log.info("fused optimizer kernel ready in %.1f s", time.perf_counter() - started)
    else:
        log.warning("fused optimizer kernel unavailable (%s); runs step through the default path", _fused.failure())


def _warm_spare() -> None:
    from worker.supervisor import SPARE

    SPARE.warm()


@signals.worker_shutdown.connect
def _stop_presence(**_) -> None:
    if _presence is not None:
        _presence.stop()
