"""The one re-send sweep: send again the experiments whose broker message may have been lost.

An experiment is enqueued only after the transaction that stored it commits, so a crash (or a
broker outage) between the commit and the send leaves it ``queued`` with nobody told; a worker
killed mid-run leaves it ``running`` with a silent heartbeat.  The api and every worker run this
sweep (``core.periodic.Periodic``); ``claim`` makes a duplicate delivery harmless, so any number
of sweepers may re-send at once."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from store.repositories import experiments as repo

log = logging.getLogger(__name__)


def requeue_stale(session: Session, enqueue: Callable[[int, str], None], older_than_s: float) -> list[int]:
    """Send every stale candidate again and return the ids sent.  A send that fails is logged
    and left for the next sweep; the others still go.  A run whose cancel was requested but
    whose worker vanished is marked ``cancelled`` instead."""
    repo.cancel_abandoned(session, older_than_s)
    sent = []
    for experiment_id, queue in repo.requeue_candidates(session, older_than_s):
        try:
            enqueue(experiment_id, queue)
        except Exception:
            log.exception("re-sending experiment %s failed; the next sweep retries", experiment_id)
            continue
        sent.append(experiment_id)
    repo.mark_enqueued(session, sent)
    if sent:
        log.info("re-sent experiments %s (message possibly lost)", sent)
    return sent
