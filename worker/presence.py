"""A worker's background duties, on a daemon thread beside the tasks:

* beat the ``workers`` table every ``heartbeat_s`` (queues served, GPUs), and remove the row on
  a clean shutdown, so the api's ``device: auto`` routing follows the live workers;
* re-send experiments whose message may be lost: ``queued`` ones not (re-)sent for
  ``requeue_after_s`` (a broker restarted without persistence) and ``running`` ones whose worker
  went silent (killed mid-run: the next attempt resumes from the last checkpoint).  Any number
  of workers may do this at once: ``claim`` lets exactly one delivery run an experiment."""

from __future__ import annotations

import logging
import os
import socket
import threading

from store.db import make_engine, make_sessionmaker, session_scope
from store.queue import send_training
from store.repositories import experiments, workers
from store.settings import Settings

log = logging.getLogger(__name__)


def gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - presence must not die with the CUDA driver
        return 0


class Presence:
    def __init__(self, app, queues: list[str], settings: Settings | None = None):
        self.app = app
        self.queues = queues
        self.settings = settings or Settings()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.sessions = make_sessionmaker(make_engine(self.settings.resolved_database_url))
        self.gpus = gpu_count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="descent-presence", daemon=True)

    @classmethod
    def start(cls, app, queues: list[str]) -> Presence:
        presence = cls(app, queues)
        presence._thread.start()
        return presence

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            with session_scope(self.sessions) as session:
                workers.forget(session, self.worker_id)
        except Exception:  # noqa: BLE001
            log.warning("could not remove worker %s from the workers table", self.worker_id, exc_info=True)

    def tick(self) -> list[int]:
        """One beat and one sweep; returns the experiment ids re-sent."""
        with session_scope(self.sessions) as session:
            workers.beat(session, self.worker_id, socket.gethostname(), self.queues, self.gpus)
            candidates = experiments.requeue_candidates(session, self.settings.requeue_after_s)
        sent = []
        for experiment_id, queue in candidates:
            send_training(self.app, experiment_id, queue)
            sent.append(experiment_id)
        if sent:
            with session_scope(self.sessions) as session:
                experiments.mark_enqueued(session, sent)
            log.info("re-sent experiments %s (message possibly lost)", sent)
        return sent

    def _run(self) -> None:
        interval = min(self.settings.heartbeat_s, self.settings.requeue_after_s / 2)
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - database or broker restarting: try next tick
                log.warning("worker presence tick failed: %s", exc)
            self._stop.wait(interval)
