"""The one re-send sweep: stale runs are sent again, a failing send costs only its own run."""

from __future__ import annotations

from store.models import Experiment
from store.repositories.requeue import requeue_stale
from tests.store.helpers import age, make_experiment


def test_a_failing_send_skips_only_that_run_and_leaves_it_for_the_next_sweep(session):
    ids = [make_experiment(session, name=f"e{i}") for i in range(3)]
    for eid in ids:
        age(session, eid, created_at=120)
    tried = []

    def flaky(experiment_id: int, queue: str) -> None:
        tried.append(experiment_id)
        if experiment_id == ids[1]:
            raise ConnectionError("broker down")

    assert requeue_stale(session, flaky, older_than_s=60) == [ids[0], ids[2]]
    assert tried == ids
    assert session.get(Experiment, ids[1]).enqueued_at is None
    assert all(session.get(Experiment, i).enqueued_at is not None for i in (ids[0], ids[2]))
    # the next sweep tries the unsent run again, and only it
    assert requeue_stale(session, lambda i, q: None, older_than_s=60) == [ids[1]]


def test_a_cancelled_run_whose_worker_vanished_is_ended_not_resent(session):
    eid = make_experiment(session)
    session.execute(Experiment.__table__.update().where(Experiment.id == eid)
                    .values(status="running", cancel_requested=True))
    age(session, eid, created_at=120, heartbeat_at=120)
    assert requeue_stale(session, lambda i, q: None, older_than_s=60) == []
    session.expire_all()
    assert session.get(Experiment, eid).status == "cancelled"


def test_a_silent_running_run_is_resent_after_the_stale_window_not_the_requeue_age(session):
    """A running run silent for ``stale_after_s`` goes out though ``older_than_s`` has not passed,
    and once more only after another silent ``stale_after_s`` without a claim; a live one never."""
    silent, live, queued = (make_experiment(session, name=n) for n in ("silent", "live", "queued"))
    for eid in (silent, live):
        session.execute(Experiment.__table__.update().where(Experiment.id == eid).values(status="running"))
    age(session, silent, created_at=30, enqueued_at=30, heartbeat_at=11)
    age(session, live, created_at=30, enqueued_at=30, heartbeat_at=1)
    age(session, queued, created_at=30, enqueued_at=30)
    assert requeue_stale(session, lambda i, q: None, older_than_s=60, stale_after_s=10) == [silent]
    assert requeue_stale(session, lambda i, q: None, older_than_s=60, stale_after_s=10) == []
    age(session, silent, enqueued_at=11, heartbeat_at=22)
    assert requeue_stale(session, lambda i, q: None, older_than_s=60, stale_after_s=10) == [silent]
    # without stale_after_s the running runs wait for older_than_s, as before
    age(session, silent, enqueued_at=30, heartbeat_at=30)
    assert requeue_stale(session, lambda i, q: None, older_than_s=60) == []
