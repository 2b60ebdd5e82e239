"""The one re-send sweep: send again the experiments whose broker message may have been lost.

An experiment is enqueued only after the transaction that stored it commits, so a crash (or a
broker outage) between the commit and the send leaves it ``queued`` with nobody told; a worker
killed mid-run leaves it ``running`` with a silent heartbeat.  The api and every worker run this
sweep (``core.periodic.Periodic``); ``claim`` makes a duplicate delivery harmless, so any number
of sweepers may re-send at once.

A send the sender knows failed (the broker down or frozen when the api published after the
commit) is marked at once: the run is ``queued`` with no ``enqueued_at`` ("never sent").  Every
pass sends those first, without waiting ``older_than_s``, so the api's reconciler (a pass every
``UNSENT_RESEND_S``) sends them within seconds of the broker answering again.  A pass stops at
the first send the broker refuses: each costs up to the publish bound, and the rest would fail
the same way."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.queue import BrokerUnavailable
from store.models import Experiment
from store.repositories import experiments as repo

log = logging.getLogger(__name__)

# seconds between the api reconciler's passes, at most: how soon a run whose send failed goes out
UNSENT_RESEND_S = 2.0


def mark_unsent(session: Session, experiment_id: int) -> None:
    """Record that ``experiment_id``'s message did not go out: the next pass sends it."""
    session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.status == "queued")
        .values(enqueued_at=None)
        .execution_options(synchronize_session=False)
    )


def unsent(session: Session, limit: int = 100) -> list[tuple[int, str]]:
    """``(id, queue)`` of queued runs never sent (or whose send failed), oldest first."""
    query = (
        select(Experiment.id, Experiment.queue)
        .where(Experiment.status == "queued", Experiment.enqueued_at.is_(None),
               Experiment.cancel_requested.is_(False))
        .order_by(Experiment.id)
        .limit(limit)
    )
    return [(row.id, row.queue) for row in session.execute(query)]


def requeue_stale(session: Session, enqueue: Callable[[int, str], None], older_than_s: float) -> list[int]:
    """Send the unsent runs and every stale candidate again and return the ids sent.  A send
    that fails is logged and left for the next sweep; the others still go, unless the broker
    itself is unavailable (then the pass stops).  A run whose cancel was requested but whose
    worker vanished is marked ``cancelled`` instead."""
    repo.cancel_abandoned(session, older_than_s)
    candidates = dict(unsent(session))
    for experiment_id, queue in repo.requeue_candidates(session, older_than_s):
        candidates.setdefault(experiment_id, queue)
    sent = []
    for experiment_id, queue in candidates.items():
        try:
            enqueue(experiment_id, queue)
        except BrokerUnavailable as exc:
            log.warning("re-sending experiment %s failed (%s); the next sweep retries", experiment_id, exc)
            break
        except Exception:
            log.exception("re-sending experiment %s failed; the next sweep retries", experiment_id)
            continue
        sent.append(experiment_id)
    repo.mark_enqueued(session, sent)
    if sent:
        log.info("sent experiments %s (never sent, or message possibly lost)", sent)
    return sent
