"""A worker's presence thread: its beat makes it visible to routing, its sweep re-sends lost
runs through the Celery app by task name, a failing send leaves the run for the next pass, and
a clean stop removes the worker."""

from __future__ import annotations

import time

import pytest

from core.queue import TRAIN_TASK
from core.settings import Settings
from store.db import make_engine, make_sessionmaker, session_scope
from store.migrate import upgrade
from store.models import Experiment
from store.repositories import workers
from tests.store.helpers import age, make_experiment
from worker.presence import Presence


class RecordingCelery:
    def __init__(self, fail_for: set[int] = frozenset()):
        self.sent: list[tuple[str, list, str]] = []
        self.fail_for = fail_for

    def send_task(self, name, args, queue, retry=True):
        if args[0] in self.fail_for:
            raise RuntimeError("this send failed")  # not the broker down: the pass goes on
        self.sent.append((name, args, queue))


@pytest.fixture
def settings(tmp_path):
    url = f"sqlite:///{tmp_path / 'descent.db'}"
    upgrade(url)
    return Settings(data_dir=tmp_path, database_url=url, requeue_after_s=60, heartbeat_s=0.05)


def test_tick_beats_and_resends_lost_runs_past_a_failing_send(settings):
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    with session_scope(sessions) as s:
        ids = [make_experiment(s, name=f"e{i}", queue="gpu") for i in range(2)]
        for eid in ids:
            age(s, eid, created_at=120)
    celery = RecordingCelery(fail_for={ids[0]})
    presence = Presence(celery, ["gpu"], settings)
    assert presence.tick() == [ids[1]]
    assert celery.sent == [(TRAIN_TASK, [ids[1]], "gpu")]
    with session_scope(sessions) as s:
        assert workers.alive(s, "gpu", within_s=10)
        assert s.get(Experiment, ids[0]).enqueued_at is None
    celery.fail_for = set()
    assert presence.tick() == [ids[0]]


def test_the_sweep_looks_for_silent_runs_every_fifth_of_the_stale_window(tmp_path):
    url = f"sqlite:///{tmp_path / 'descent.db'}"
    upgrade(url)
    presence = Presence(RecordingCelery(), ["cpu"], Settings(data_dir=tmp_path, database_url=url))
    assert presence._thread.interval_s == Settings().stale_heartbeat_s / 5 == 2.0


def test_stop_removes_the_worker_row(settings):
    presence = Presence.start(RecordingCelery(), ["cpu"], settings)
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    deadline = time.monotonic() + 10  # the first beat lands as soon as the thread runs
    while not _alive(sessions, "cpu") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _alive(sessions, "cpu")
    presence.stop()
    assert not _alive(sessions, "cpu")


def _alive(sessions, queue: str) -> bool:
    with session_scope(sessions) as s:
        return workers.alive(s, queue, within_s=10)
