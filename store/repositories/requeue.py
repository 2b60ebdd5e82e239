"""The one re-send sweep: send again the experiments whose broker message may have been lost.

An experiment is enqueued only after the transaction that stored it commits, so a crash (or a
broker outage) between the commit and the send leaves it ``queued`` with nobody told; a worker
killed mid-run leaves it ``running`` with a silent heartbeat.  The api and every worker run this
sweep (``core.periodic.Periodic``); ``claim`` makes a duplicate delivery harmless, so any number
of sweepers may re-send at once.

A ``running`` run is re-sent once its heartbeat has been silent for ``stale_after_s`` (the
``stale_heartbeat_s`` that ``claim`` uses, 10 s by default), not ``older_than_s``: its attempt
beats every 0.25 s from claim to outcome, so a short silence already means the worker is gone,
and a worker's sweep runs every ``stale_heartbeat_s / 5`` so an idle worker resumes the run
within ~12 s of the kill.  It is re-sent again only after another ``stale_after_s`` without a
claim.

A send the sender knows failed (the broker down or frozen when the api published after the
commit) is marked at once: the run is ``queued`` with no ``enqueued_at`` ("never sent").  Every
pass sends those first, without waiting ``older_than_s``, so the api's reconciler (a pass every
``UNSENT_RESEND_S``) sends them within seconds of the broker answering again.  A pass stops at
the first send the broker refuses: each costs up to the publish bound, and the rest would fail
the same way."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.queue import BrokerUnavailable
from store.models import Experiment, utcnow
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


def silent_running(session: Session, stale_after_s: float, limit: int = 100) -> list[tuple[int, str]]:
    """``(id, queue)`` of ``running`` runs whose heartbeat is older than ``stale_after_s`` (their
    worker is gone: ``claim`` lets another take them over) and that were not re-sent since."""
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    query = (
        select(Experiment.id, Experiment.queue)
        .where(Experiment.status == "running", Experiment.cancel_requested.is_(False),
               Experiment.heartbeat_at < cutoff,
               func.coalesce(Experiment.enqueued_at, Experiment.created_at) < cutoff)
        .order_by(Experiment.id)
        .limit(limit)
    )
    return [(row.id, row.queue) for row in session.execute(query)]


def requeue_stale(session: Session, enqueue: Callable[[int, str], None], older_than_s: float,
                  stale_after_s: float | None = None) -> list[int]:
    """Send the unsent runs and every stale candidate again and return the ids sent: ``queued``
    ones not sent for ``older_than_s``, ``running`` ones silent for ``stale_after_s`` (default
    ``older_than_s``).  A send that fails is logged and left for the next sweep; the others still
    go, unless the broker itself is unavailable (then the pass stops).  A run whose cancel was
    requested but whose worker went silent for ``stale_after_s`` is marked ``cancelled`` instead."""
    stale_after_s = older_than_s if stale_after_s is None else stale_after_s
    repo.cancel_abandoned(session, stale_after_s)
    candidates = dict(unsent(session))
    for experiment_id, queue in [*repo.requeue_candidates(session, older_than_s),
                                 *silent_running(session, stale_after_s)]:
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
