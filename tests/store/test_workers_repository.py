from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from store.models import Worker, utcnow
from store.repositories import workers


@pytest.mark.parametrize("queues, seen_ago, queue, alive", [
    (["gpu"], 1, "gpu", True),
    (["gpu", "cpu"], 1, "cpu", True),
    (["cpu"], 1, "gpu", False),
    (["gpu"], 120, "gpu", False),
])
def test_alive_needs_a_recent_worker_on_that_queue(session, queues, seen_ago, queue, alive):
    workers.beat(session, "host:1", "host", queues, gpus=1)
    session.execute(update(Worker).values(last_seen=utcnow() - timedelta(seconds=seen_ago)))
    assert workers.alive(session, queue, within_s=30) is alive


def test_beat_updates_and_forget_removes(session):
    workers.beat(session, "h:2", "h", ["cpu"], 0)
    workers.beat(session, "h:2", "h", ["gpu"], 2)
    assert workers.alive(session, "gpu", 30) and not workers.alive(session, "cpu", 30)
    workers.forget(session, "h:2")
    assert not workers.alive(session, "gpu", 30)
