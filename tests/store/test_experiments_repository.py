"""The lifecycle's conditional updates on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from store.models import Experiment
from store.repositories import experiments as repo
from tests.store.helpers import age, make_experiment

STALE = 60.0


def _set(session, experiment_id, **values):
    session.execute(update(Experiment).where(Experiment.id == experiment_id).values(**values))


@pytest.mark.parametrize(
    "status, heartbeat_age, cancel, claimable",
    [
        ("queued", None, False, True),
        ("running", 120.0, False, True),  # its worker died: resume
        ("running", 5.0, False, False),  # alive: a duplicate delivery does nothing
        ("succeeded", 120.0, False, False),
        ("failed", None, False, False),
        ("cancelled", None, True, False),
        ("running", 120.0, True, False),  # cancel requested: nobody should pick it up
    ],
)
def test_claim_takes_only_available_runs(session, status, heartbeat_age, cancel, claimable):
    eid = make_experiment(session)
    _set(session, eid, status=status, cancel_requested=cancel, attempt=3 if status != "queued" else 0)
    if heartbeat_age is not None:
        age(session, eid, heartbeat_at=heartbeat_age)
    claimed = repo.claim(session, eid, "host-a", "cpu", stale_after_s=STALE)
    if not claimable:
        assert claimed is None
        assert repo.get(session, eid).status == status
        return
    assert claimed is not None
    assert (claimed.status, claimed.worker_host, claimed.device) == ("running", "host-a", "cpu")
    assert claimed.attempt == (1 if status == "queued" else 4)
    assert claimed.started_at is not None and claimed.heartbeat_at is not None


def test_two_claims_of_one_delivery_yield_one_owner(session):
    eid = make_experiment(session)
    first = repo.claim(session, eid, "a", "cpu", STALE)
    second = repo.claim(session, eid, "b", "cpu", STALE)
    assert first is not None and second is None
    assert repo.get(session, eid).worker_host == "a"


def test_resume_keeps_first_start_time(session):
    eid = make_experiment(session)
    started = repo.claim(session, eid, "a", "cpu", STALE).started_at
    age(session, eid, heartbeat_at=600)
    again = repo.claim(session, eid, "b", "cuda:0", STALE)
    assert again.started_at == started and again.attempt == 2


def test_heartbeat_and_finish_are_fenced_by_attempt(session):
    eid = make_experiment(session)
    repo.claim(session, eid, "a", "cpu", STALE)
    age(session, eid, heartbeat_at=600)
    repo.claim(session, eid, "b", "cpu", STALE)  # attempt 2 takes over
    stale = repo.heartbeat(session, eid, 1, progress=0.9, epoch=9, step=90)
    assert not stale.owned and not stale.keep_going
    assert not repo.finish(session, eid, 1, "succeeded")
    live = repo.heartbeat(session, eid, 2, progress=0.5, epoch=5, step=50)
    assert live.owned and not live.cancel_requested
    e = repo.get(session, eid)
    assert (e.progress, e.epoch, e.step, e.status) == (0.5, 5, 50, "running")
    assert repo.finish(session, eid, 2, "failed", error="diverged")
    e = repo.get(session, eid)
    assert (e.status, e.error) == ("failed", "diverged") and e.finished_at is not None
    assert not repo.finish(session, eid, 2, "succeeded")  # finished runs stay finished


def test_cancel_queued_is_immediate_and_running_is_requested(session):
    queued, running = make_experiment(session), make_experiment(session)
    repo.claim(session, running, "a", "cpu", STALE)
    assert repo.request_cancel(session, queued) == "cancelled"
    assert repo.request_cancel(session, running) == "running"
    beat = repo.heartbeat(session, running, 1, progress=0.1, epoch=1, step=1)
    assert beat.owned and beat.cancel_requested and not beat.keep_going
    assert repo.finish(session, running, 1, "cancelled")
    assert repo.claim(session, queued, "a", "cpu", STALE) is None


def test_finish_rejects_unknown_status(session):
    eid = make_experiment(session)
    with pytest.raises(ValueError, match="status"):
        repo.finish(session, eid, 1, "paused")


def test_requeue_candidates_are_stale_queued_or_silent_running(session):
    fresh = make_experiment(session)
    lost = make_experiment(session)
    age(session, lost, created_at=300, enqueued_at=300)
    orphan = make_experiment(session)
    repo.claim(session, orphan, "a", "cpu", STALE)
    age(session, orphan, created_at=300, enqueued_at=300, heartbeat_at=300)
    live = make_experiment(session)
    repo.claim(session, live, "a", "cpu", STALE)
    age(session, live, created_at=300, enqueued_at=300)
    candidates = dict(repo.requeue_candidates(session, older_than_s=60))
    assert set(candidates) == {lost, orphan} and fresh not in candidates
    repo.mark_enqueued(session, [lost])
    assert set(dict(repo.requeue_candidates(session, older_than_s=60))) == {orphan}


def test_list_filters_and_pages(session):
    ids = [make_experiment(session, name=f"e{i}", tags=["a"] if i % 2 else ["b"], solver="adam" if i < 2 else "sgd")
           for i in range(5)]
    page, total = repo.list_page(session, tag="a", limit=1, offset=0)
    assert total == 2 and [e.id for e in page] == [ids[3]]
    page, total = repo.list_page(session, solver="adam")
    assert total == 2 and {e.id for e in page} == set(ids[:2])
    repo.claim(session, ids[0], "h", "cpu", STALE)
    page, total = repo.list_page(session, status="running")
    assert [e.id for e in page] == [ids[0]]


def test_delete_only_finished_and_takes_metrics_along(session):
    from store.repositories import metrics

    eid = make_experiment(session)
    metrics.add_points(session, eid, [("train/loss", 0, 0, 1.0, 1.0)])
    assert not repo.delete_finished(session, eid)
    repo.request_cancel(session, eid)
    assert repo.delete_finished(session, eid)
    assert repo.get(session, eid) is None
    assert metrics.summaries(session, [eid]) == []
    assert metrics.raw_points(session, eid, "train/loss") == []
