"""Drill: the broker freezes (a Redis that keeps its TCP connections open and never answers,
``SIGSTOP``) under a real api process (``descent api``) and a real worker (``descent worker``),
against a real PostgreSQL with the real migrations.

Before, ``POST /experiments`` hung over 35 s after committing its row (the send after the commit
waited on Redis forever), and a run whose send failed waited for the 60 s re-send sweep.  Now the
publish gives up within ``core.queue.PUBLISH_TIMEOUT_S``: the submission answers 201 within 2 s
with the run stored, ``queued`` and marked never sent (no ``enqueued_at``), ``/health`` answers
within its own bound, a retry of the submission with the same ``Idempotency-Key`` returns the
same run (before, a retry made a second run and both trained), and once Redis answers again the api's reconciler sends the run within
seconds: it starts within ~10 s of the thaw and every step's metrics are stored exactly once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from core.queue import make_celery, send_training
from core.settings import Settings
from store.db import session_scope
from store.models import Metric, Worker
from tests.identity import admin_token, bearer
from tests.services import require_executable, scratch_database
from tests.worker.records import add_builtin_split, add_experiment, sessions_for
from tests.worker.splits import builtin_split, make_spec

pytestmark = [pytest.mark.drills, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
EPOCHS, BATCH = 3, 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def can_connect(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class FreezableRedis:
    """A throwaway redis-server of this drill's own, frozen with SIGSTOP and thawed with SIGCONT."""

    def __init__(self):
        self.port = free_port()
        self.process = subprocess.Popen(
            [require_executable("redis-server", "redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: can_connect(self.port), 10, "redis-server to accept connections")
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()
        self.process.kill()
        self.process.wait()


class Service:
    """A ``descent`` command in its own process group, its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "descent.cli", *args], cwd=ROOT, env=env,
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        assert self.process.poll() is None, f"exited with {self.process.returncode}: {self.log.read_text()[-3000:]}"
        return True

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def redis():
    server = FreezableRedis()
    yield server
    server.stop()


@pytest.fixture
def database_url():
    with scratch_database() as url:
        yield url


@pytest.fixture
def services(redis, database_url, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DESCENT_DATABASE_URL": database_url,
        "DESCENT_BROKER_URL": redis.url,
        "DESCENT_DATA_DIR": str(tmp_path / "data"),
        # the stale-message sweep (60 s by default) must not be what rescues the run
        "DESCENT_REQUEUE_AFTER_S": "600",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    sessions = sessions_for(database_url)
    started = []
    try:
        api = Service(["api", "--port", str(port), "--log-level", "warning"], env, tmp_path / "api.log")
        started.append(api)
        worker = Service(["worker", "--queue", "cpu", "--loglevel", "INFO"], env, tmp_path / "worker.log")
        started.append(worker)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers=bearer(admin_token(sessions)),
                              timeout=30)
        wait_for(lambda: api.alive() and can_connect(port), 60, "the api to listen")

        def registered() -> bool:
            worker.alive()
            with session_scope(sessions) as session:
                return session.scalar(select(Worker.id)) is not None

        wait_for(registered, 90, "the worker to register")
        yield client, sessions
        client.close()
    finally:
        for service in reversed(started):
            service.stop()


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_a_frozen_broker_never_hangs_the_api_and_the_run_starts_soon_after_the_thaw(redis, services):
    client, sessions = services
    split = client.post("/splits", json={"dataset": "wine", "strategy": "stratified", "seed": 3})
    assert split.status_code == 201, split.text
    body = {"name": "sent after the thaw", "split_id": split.json()["id"],
            "architecture": {"name": "mlp", "depth": 1, "width": 16}, "solver": {"name": "adam", "base_lr": 0.01},
            "training": {"epochs": EPOCHS, "batch_size": BATCH, "device": "cpu"}}
    # a run before the freeze: the api's and the worker's broker connections are open when it comes
    warm = client.post("/experiments", json={**body, "name": "before the freeze"})
    assert warm.status_code == 201, warm.text
    wait_for(lambda: client.get(f"/experiments/{warm.json()['id']}").json()["status"] == "succeeded", 120,
             "the run before the freeze to finish")

    redis.freeze()
    try:
        key = {"Idempotency-Key": str(uuid.uuid4())}
        created, submit_s = timed(lambda: client.post("/experiments", json=body, headers=key))
        health, health_s = timed(lambda: client.get("/health"))
        assert created.status_code == 201, created.text
        assert submit_s < 2.5, f"POST /experiments took {submit_s:.2f} s with the broker frozen"
        # a client that lost that answer sends the same request with the same key: the first run, not a second
        retried = client.post("/experiments", json=body, headers=key)
        assert retried.status_code == 201 and retried.json()["id"] == created.json()["id"], retried.text
        named = client.get("/experiments", params={"limit": 200}).json()["items"]
        assert [e["id"] for e in named if e["name"] == body["name"]] == [created.json()["id"]]
        # /health bounds each check to 1.5 s (api.health.CHECK_TIMEOUT_S): the broker's answers 'down' at that bound
        assert health_s < 2.0, f"GET /health took {health_s:.2f} s with the broker frozen"
        assert health.json()["broker"] is False, health.text
        experiment_id = created.json()["id"]
        time.sleep(3)  # a reconciler pass or two fail against the frozen broker
        stored = client.get(f"/experiments/{experiment_id}").json()
        assert stored["status"] == "queued" and stored["enqueued_at"] is None, stored
    finally:
        redis.thaw()
    thawed = time.monotonic()

    started = wait_for(lambda: client.get(f"/experiments/{experiment_id}").json()["status"] != "queued",
                       30, "the run to start after the thaw", interval_s=0.1)
    start_s = time.monotonic() - thawed
    print(f"\nbroker frozen: POST answered in {submit_s:.2f} s, /health in {health_s:.2f} s; "
          f"the run started {start_s:.1f} s after the thaw")
    assert started and start_s < 10, f"the run started {start_s:.1f} s after the thaw"

    steps_per_epoch = -(-split.json()["sizes"]["train"] // BATCH)
    for run in (warm.json()["id"], experiment_id):
        finished = wait_for(lambda r=run: (e := client.get(f"/experiments/{r}").json())["status"]
                            in ("succeeded", "failed", "cancelled") and e, 120, f"run {run} to finish")
        assert finished["status"] == "succeeded", finished
        assert finished["attempt"] == 1  # it ran once
        with session_scope(sessions) as session:
            rows = session.execute(select(Metric.name, Metric.step).where(Metric.experiment_id == run)).all()
        assert max(Counter(map(tuple, rows)).values()) == 1, "a metric point stored twice"
        assert sorted(s for n, s in rows if n == "train/loss") == list(range(1, EPOCHS * steps_per_epoch + 1))
        assert sorted(s for n, s in rows if n == "val/loss") == [e * steps_per_epoch for e in range(1, EPOCHS + 1)]


def test_a_publish_to_a_frozen_broker_gives_up_within_the_bound_and_the_next_one_goes_through(redis, tmp_path):
    """The sender's side alone: ``send_training`` raises ``BrokerUnavailable`` in about
    ``PUBLISH_TIMEOUT_S`` on a frozen Redis (connected before, and connecting afresh), then sends
    at once after the thaw on the same Celery app."""
    from core.queue import PUBLISH_TIMEOUT_S, BrokerUnavailable

    app = make_celery(Settings(data_dir=tmp_path, broker_url=redis.url))
    send_training(app, 1, "cpu")
    redis.freeze()
    try:
        for experiment_id in (2, 3):
            started = time.monotonic()
            with pytest.raises(BrokerUnavailable, match=f"experiment {experiment_id}"):
                send_training(app, experiment_id, "cpu")
            assert time.monotonic() - started < 2 * PUBLISH_TIMEOUT_S + 1
        fresh = make_celery(Settings(data_dir=tmp_path, broker_url=redis.url))
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            send_training(fresh, 4, "cpu")
        assert time.monotonic() - started < 2 * PUBLISH_TIMEOUT_S + 1
    finally:
        redis.thaw()
    started = time.monotonic()
    send_training(app, 5, "cpu")
    assert time.monotonic() - started < 1


def test_a_run_whose_send_failed_is_marked_never_sent_and_the_next_pass_sends_it_first(database_url):
    """The api's after-commit send (``api.app.marking_unsent``) marks a run it could not send;
    a sweep pass sends the never-sent runs without waiting for the stale age, and stops at the
    first send the broker refuses instead of paying the publish bound once per run."""
    from api.app import marking_unsent
    from core.queue import BrokerUnavailable
    from store.models import Experiment, utcnow
    from store.repositories.requeue import requeue_stale

    sessions = sessions_for(database_url)
    split_id = add_builtin_split(sessions, "wine")
    spec = make_spec(builtin_split("wine")).model_copy(update={"split_id": split_id})
    ids = [add_experiment(sessions, spec) for _ in range(3)]
    with session_scope(sessions) as session:  # all three sent a moment ago, as the api leaves them
        for experiment_id in ids:
            session.get(Experiment, experiment_id).enqueued_at = utcnow()

    tried = []

    def frozen(experiment_id: int, queue: str) -> None:
        tried.append(experiment_id)
        raise BrokerUnavailable("frozen")

    for experiment_id in ids[:2]:
        marking_unsent(sessions, frozen)(experiment_id, "cpu")  # logs, marks, does not raise
    with session_scope(sessions) as session:
        assert [session.get(Experiment, i).enqueued_at is None for i in ids] == [True, True, False]
        assert requeue_stale(session, frozen, older_than_s=600) == []
    assert tried == [ids[0], ids[1], ids[0]]  # the pass stopped at its first refused send

    sent = []
    with session_scope(sessions) as session:
        assert requeue_stale(session, lambda i, q: sent.append((i, q)), older_than_s=600) == ids[:2]
    assert sent == [(ids[0], "cpu"), (ids[1], "cpu")]
    with session_scope(sessions) as session:
        assert all(session.get(Experiment, i).enqueued_at is not None for i in ids)
        assert requeue_stale(session, lambda i, q: sent.append((i, q)), older_than_s=600) == []
