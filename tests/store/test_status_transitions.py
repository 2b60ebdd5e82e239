"""The store moves a run only along ``core.statuses.TRANSITIONS``, and every edge of that table
is a move some repository operation makes: the table is what the store does, no more, no less."""

from __future__ import annotations

import pytest

from core.statuses import FINISHED, STATUSES, TRANSITIONS
from store.models import Experiment
from store.repositories import experiments as repo
from tests.store.helpers import age, make_experiment

OPERATIONS = {
    "claim": lambda s, eid: repo.claim(s, eid, "w", "cpu", stale_after_s=60),
    "finish succeeded": lambda s, eid: repo.finish(s, eid, 1, "succeeded"),
    "finish failed": lambda s, eid: repo.finish(s, eid, 1, "failed", error="boom"),
    "finish cancelled": lambda s, eid: repo.finish(s, eid, 1, "cancelled"),
    "finish pruned": lambda s, eid: repo.finish(s, eid, 1, "pruned"),
    "request cancel": lambda s, eid: repo.request_cancel(s, eid),
    "cancel abandoned": lambda s, eid: repo.cancel_abandoned(s, 60),
}


def _run_from(session, start: str, operation: str, cancel_requested: bool) -> str:
    eid = make_experiment(session)
    session.execute(Experiment.__table__.update().where(Experiment.id == eid)
                    .values(status=start, attempt=1, cancel_requested=cancel_requested))
    age(session, eid, heartbeat_at=120)  # silent long enough to be taken over
    OPERATIONS[operation](session, eid)
    session.expire_all()
    return session.get(Experiment, eid).status


def test_repository_moves_are_exactly_the_transition_table(session):
    seen = set()
    for start in STATUSES:
        for operation in OPERATIONS:
            for cancel_requested in (False, True):
                end = _run_from(session, start, operation, cancel_requested)
                assert end == start or end in TRANSITIONS[start], f"{operation} moved {start} → {end}"
                if operation == "claim" and start == "running":
                    seen.add((start, start))  # a takeover: running again, under a new attempt
                elif end != start:
                    seen.add((start, end))
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert seen == table


@pytest.mark.parametrize("status", STATUSES)
def test_finished_means_no_way_out(status):
    assert (status in FINISHED) == (not TRANSITIONS[status])
