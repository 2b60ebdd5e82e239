"""Enqueue-after-commit and the reconciler against a real Redis broker (Celery send_task)."""

from __future__ import annotations

import base64
import json
import time

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import event

from api.app import create_app, default_enqueuer
from core.queue import TRAIN_TASK
from core.settings import Settings
from store.db import session_scope
from store.repositories import experiments as repo
from store.repositories.requeue import requeue_stale
from tests.identity import TEST_HOSTS, admin_token, bearer, default_project_id
from tests.services import redis_url, scratch_redis
from tests.store.helpers import age

API = "/api/v1"
TEST_REDIS_DB = 11  # not the default db, so other suites' queues are untouched


@pytest.fixture
def broker(tmp_path):
    with scratch_redis(TEST_REDIS_DB) as url:
        r = redis.Redis.from_url(url)
        yield url, r
        r.close()


def sent_ids(r: redis.Redis, queue: str = "cpu") -> list[int]:
    ids = []
    for raw in r.lrange(queue, 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == TRAIN_TASK
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        ids.append(args[0])
    return sorted(ids)


@pytest.fixture
def redis_client(tmp_path, session_factory, broker):
    url, r = broker
    settings = Settings(data_dir=tmp_path / "data", broker_url=url, allowed_hosts=TEST_HOSTS)
    app = create_app(settings, session_factory=session_factory, reconcile_interval_s=0, broker_check=lambda: None)
    with TestClient(app, headers=bearer(admin_token(session_factory))) as c:
        yield c, r


def _create(c, split_id) -> dict:
    return c.post(f"{API}/experiments", json={"name": "r", "split_id": split_id, "architecture": {"name": "mlp"},
                                               "solver": {"name": "sgd"}})


def test_created_experiment_reaches_the_broker_after_commit(redis_client):
    c, r = redis_client
    split = c.post(f"{API}/splits", json={"dataset": "iris"}).json()
    e = _create(c, split["id"]).json()
    assert sent_ids(r) == [e["id"]]


def test_failed_commit_enqueues_nothing(redis_client, session_factory):
    c, r = redis_client
    split = c.post(f"{API}/splits", json={"dataset": "iris"}).json()

    def refuse(session):
        raise RuntimeError("disk full")

    event.listen(session_factory, "before_commit", refuse)
    try:
        c_no_raise = TestClient(c.app, raise_server_exceptions=False, headers=c.headers)
        response = _create(c_no_raise, split["id"])
    finally:
        event.remove(session_factory, "before_commit", refuse)
    assert response.status_code == 500
    assert sent_ids(r) == []
    assert c.get(f"{API}/experiments").json()["total"] == 0


def test_lost_message_is_resent_and_a_duplicate_runs_once(redis_client, session_factory, tmp_path):
    c, r = redis_client
    split = c.post(f"{API}/splits", json={"dataset": "iris"}).json()
    eid = _create(c, split["id"]).json()["id"]
    r.delete("cpu")  # the message is lost
    enqueue = default_enqueuer(Settings(data_dir=tmp_path, broker_url=redis_url(TEST_REDIS_DB)))
    with session_scope(session_factory) as s:
        assert requeue_stale(s, enqueue, older_than_s=60) == []  # too recent to call lost
        age(s, eid, created_at=120, enqueued_at=120)
        assert requeue_stale(s, enqueue, older_than_s=60) == [eid]
        assert requeue_stale(s, enqueue, older_than_s=60) == []  # re-sent just now
    assert sent_ids(r) == [eid]
    # an old delivery that was not lost after all arrives too: only one claim succeeds
    with session_scope(session_factory) as s:
        claims = [repo.claim(s, eid, f"w{i}", "cpu", stale_after_s=60) for i in range(2)]
    assert sum(x is not None for x in claims) == 1


def test_reconciler_thread_resends_in_the_background(session_factory, broker, tmp_path, iris_split_id):
    url, r = broker
    enqueue = default_enqueuer(Settings(data_dir=tmp_path, broker_url=url))
    with session_scope(session_factory) as s:
        eid = repo.create(s, name="lost", spec={}, solver="sgd", tags=[], split_id=iris_split_id, queue="cpu").id
        age(s, eid, created_at=120)
    app = create_app(Settings(data_dir=tmp_path, broker_url=url), session_factory=session_factory, enqueuer=enqueue,
                     reconcile_interval_s=0.05, broker_check=lambda: None)
    with TestClient(app):  # the app's lifespan runs the sweep
        deadline = time.monotonic() + 10
        while not sent_ids(r) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert sent_ids(r) == [eid]


@pytest.fixture
def iris_split_id(session_factory):
    from store.models import Split

    with session_scope(session_factory) as s:
        split = Split(project_id=default_project_id(s), builtin="iris", strategy="random", fractions={"train": 1.0}, seed=0,
                      train_indices=list(range(150)), val_indices=[], test_indices=[], summary={})
        s.add(split)
        s.flush()
        return split.id


def test_reconciler_resends_a_run_whose_worker_went_silent_after_the_stale_window(session_factory, broker, tmp_path,
                                                                                    iris_split_id):
    """A running run silent for DESCENT_STALE_HEARTBEAT_S (its worker died) is sent again by the
    api too, without waiting DESCENT_REQUEUE_AFTER_S; one silent for less is left alone."""
    from sqlalchemy import update

    from store.models import Experiment

    url, r = broker
    settings = Settings(data_dir=tmp_path, broker_url=url, stale_heartbeat_s=10, requeue_after_s=600)
    with session_scope(session_factory) as s:
        ids = [repo.create(s, name=n, spec={}, solver="sgd", tags=[], split_id=iris_split_id, queue="cpu").id
               for n in ("dead", "alive")]
        s.execute(update(Experiment).where(Experiment.id.in_(ids)).values(status="running", attempt=1))
        age(s, ids[0], heartbeat_at=15, enqueued_at=15, created_at=15)
        age(s, ids[1], heartbeat_at=2, enqueued_at=15, created_at=15)
    app = create_app(settings, session_factory=session_factory, enqueuer=default_enqueuer(settings),
                     reconcile_interval_s=0.05, broker_check=lambda: None)
    with TestClient(app):
        deadline = time.monotonic() + 10
        while not sent_ids(r) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # more passes: the live one must stay unsent
    assert sent_ids(r) == [ids[0]]
