"""A worker's background duties, on a ``core.periodic.Periodic`` thread beside the tasks:

* beat the ``workers`` table every ``heartbeat_s`` (queues served, GPUs), and remove the row on
  a clean shutdown, so the api's ``device: auto`` routing follows the live workers;
* run the re-send sweep (``store.repositories.requeue``): ``queued`` experiments not (re-)sent
  for ``requeue_after_s`` (a broker restarted without persistence) and ``running`` ones whose
  worker went silent for ``stale_heartbeat_s`` (killed mid-run: the next attempt resumes from
  the last checkpoint).  The thread runs every ``stale_heartbeat_s / 5`` at least (2 s by
  default), so an idle worker takes over a killed worker's run within ~12 s of the kill."""

from __future__ import annotations

import logging
import os
import socket
from functools import partial

from core.periodic import Periodic
from core.queue import send_training
from core.settings import Settings
from store.db import make_engine, make_sessionmaker, session_scope
from store.repositories import workers
from store.repositories.requeue import requeue_stale

log = logging.getLogger(__name__)

# sweeps per stale window: a silent run is re-sent at most stale_heartbeat_s / STALE_CHECKS late
STALE_CHECKS = 5


def gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - presence must not die with the CUDA driver
        return 0


class Presence:
    def __init__(self, app, queues: list[str], settings: Settings):
        self.queues = queues
        self.settings = settings
        self.enqueue = partial(send_training, app)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.sessions = make_sessionmaker(make_engine(self.settings.resolved_database_url))
        self.gpus = gpu_count()
        settings = self.settings
        interval = min(settings.heartbeat_s, settings.requeue_after_s / 2, settings.stale_heartbeat_s / STALE_CHECKS)
        self._thread = Periodic("descent-presence", interval, self.tick, first_at_once=True)

    @classmethod
    def start(cls, app, queues: list[str], settings: Settings) -> Presence:
        presence = cls(app, queues, settings)
        presence._thread.start()
        return presence

    def stop(self) -> None:
        self._thread.stop()
        try:
            with session_scope(self.sessions) as session:
                workers.forget(session, self.worker_id)
        except Exception:  # noqa: BLE001
            log.warning("could not remove worker %s from the workers table", self.worker_id, exc_info=True)

    def tick(self) -> list[int]:
        """One beat and one sweep; returns the experiment ids re-sent."""
        with session_scope(self.sessions) as session:
            workers.beat(session, self.worker_id, socket.gethostname(), self.queues, self.gpus)
        with session_scope(self.sessions) as session:
            return requeue_stale(session, self.enqueue, self.settings.requeue_after_s,
                                 stale_after_s=self.settings.stale_heartbeat_s)
