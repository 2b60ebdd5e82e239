"""Re-send experiments whose broker message may have been lost.

An experiment is enqueued only after the transaction that stored it commits, so a crash (or a
broker outage) between the commit and the send leaves it ``queued`` with nobody told.  The
reconciler sends such runs again, and runs whose worker went silent; ``claim`` makes a
duplicate delivery harmless, so re-sending is always safe."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from store.db import session_scope
from store.repositories import experiments as repo

log = logging.getLogger(__name__)


def requeue_stale(session: Session, enqueue: Callable[[int, str], None], older_than_s: float) -> list[int]:
    """Send every stale candidate again; returns the ids sent.  A run whose cancel was
    requested but whose worker vanished is marked ``cancelled`` instead."""
    repo.cancel_abandoned(session, older_than_s)
    sent = []
    for experiment_id, queue in repo.requeue_candidates(session, older_than_s):
        try:
            enqueue(experiment_id, queue)
        except Exception:
            log.exception("re-sending experiment %s failed; will retry", experiment_id)
            continue
        sent.append(experiment_id)
    repo.mark_enqueued(session, sent)
    return sent


class ReconcilerThread(threading.Thread):
    """Runs ``requeue_stale`` every ``interval_s`` until ``stop()``."""

    def __init__(self, factory: sessionmaker, enqueue: Callable[[int, str], None], older_than_s: float,
                 interval_s: float):
        super().__init__(name="descent-reconciler", daemon=True)
        self.factory, self.enqueue = factory, enqueue
        self.older_than_s, self.interval_s = older_than_s, interval_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            try:
                with session_scope(self.factory) as session:
                    sent = requeue_stale(session, self.enqueue, self.older_than_s)
                if sent:
                    log.info("re-sent experiments %s", sent)
            except Exception:
                log.exception("reconciler pass failed")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_event.set()
        self.join(timeout)
