"""Drill: the database stops (a PostgreSQL cluster of this drill's own, stopped and started again)
under a real api and a real worker process (``descent worker``), with a Redis broker.

Before, an idle worker took each message sent during the outage, failed its claim with
``OperationalError``, acknowledged and dropped it, so the runs started only when the 60 s re-send
sweep found them; ordinary endpoints answered a plain 500.  Now ordinary endpoints answer 503
with ``Retry-After`` within seconds, saying the database is unreachable; the worker keeps every
message (the task retries it with a countdown capped at ``worker.tasks.CLAIM_RETRY_MAX_S``), so
the runs start within ~10 s of the database's return, with every step's metrics stored once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from core.queue import make_celery, send_training
from core.settings import Settings
from store.db import session_scope
from store.migrate import upgrade
from store.models import Metric, Worker, utcnow
from store.repositories import experiments
from tests.drills.test_broker_frozen import free_port, wait_for
from tests.identity import TEST_HOSTS, admin_token, bearer
from tests.services import require_executable, scratch_redis
from tests.worker.records import add_builtin_split, sessions_for
from tests.worker.splits import builtin_split, make_spec

pytestmark = [pytest.mark.drills, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 13  # this drill's own database number on the test Redis
EPOCHS, BATCH = 3, 16
STEPS_PER_EPOCH = -(-len(builtin_split("wine").x_train) // BATCH)
OUTAGE_S = 8  # long enough for the worker to receive every message and retry it a few times


class StoppablePostgres:
    """A throwaway PostgreSQL cluster (``initdb``) on a free port, run as the ``postgres`` user
    (PostgreSQL refuses to run as root), stopped and started with ``pg_ctl``."""

    def __init__(self):
        self.runuser = require_executable("runuser", "util-linux")
        self.initdb = require_executable("initdb", "postgresql")
        self.pg_ctl = require_executable("pg_ctl", "postgresql")
        self.folder = Path(tempfile.mkdtemp(prefix="descent-drill-pg-"))
        shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"
        self.port = free_port()
        self._as_postgres(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *command: str) -> None:
        result = subprocess.run([self.runuser, "-u", "postgres", "--", *command], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, f"{command[0]} failed: {result.stdout}{result.stderr}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(self.pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"),
                          "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._as_postgres(self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def postgres():
    server = StoppablePostgres()
    try:
        server.start()
        upgrade(server.url)
        yield server
    finally:
        server.remove()


@pytest.fixture
def broker_url():
    with scratch_redis(REDIS_DB) as url:
        yield url


@pytest.fixture
def worker(postgres, broker_url, tmp_path):
    env = {
        **os.environ,
        "DESCENT_DATABASE_URL": postgres.url,
        "DESCENT_BROKER_URL": broker_url,
        "DESCENT_DATA_DIR": str(tmp_path / "data"),
        # the stale-message sweep must not be what rescues the runs: the kept messages must
        "DESCENT_REQUEUE_AFTER_S": "600",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "worker.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "descent.cli", "worker", "--queue", "cpu", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    sessions = sessions_for(postgres.url)

    def registered() -> bool:
        assert process.poll() is None, f"worker exited with {process.returncode}: {log.read_text()[-3000:]}"
        with session_scope(sessions) as session:
            return session.scalar(select(Worker.id)) is not None

    try:
        wait_for(registered, 90, "the worker to register")
        yield log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def queued_runs(sessions, count: int) -> list[int]:
    """Stored ``queued`` and marked sent, the way the api leaves a run it has just enqueued."""
    split_id = add_builtin_split(sessions, "wine")
    ids = []
    for seed in range(count):
        spec = make_spec(builtin_split("wine"), epochs=EPOCHS, batch_size=BATCH, seed=seed)
        with session_scope(sessions) as session:
            experiment = experiments.create(
                session, name=f"outage {seed}", spec=spec.model_copy(update={"split_id": split_id}).model_dump(
                    mode="json"), solver=spec.solver.name, tags=[], split_id=split_id, queue="cpu")
            experiment.enqueued_at = utcnow()
            session.flush()
            ids.append(experiment.id)
    return ids


def statuses(sessions, ids: list[int]) -> dict[int, str]:
    with session_scope(sessions) as session:
        return {i: experiments.get(session, i).status for i in ids}


def test_a_database_outage_answers_503_and_loses_no_queued_run(postgres, broker_url, worker, tmp_path):
    sessions = sessions_for(postgres.url)
    settings = Settings(data_dir=tmp_path / "data", database_url=postgres.url, broker_url=broker_url,
                        allowed_hosts=TEST_HOSTS, requeue_after_s=600)
    ids = queued_runs(sessions, 2)
    sender = make_celery(settings)
    with TestClient(create_app(settings, reconcile_interval_s=0), headers=bearer(admin_token(sessions))) as client:
        assert client.get("/api/v1/experiments").status_code == 200

        postgres.stop()
        stopped = time.monotonic()
        try:
            for experiment_id in ids:  # the worker receives each while the database is down
                send_training(sender, experiment_id, "cpu")
            for path in ("/api/v1/experiments", f"/api/v1/experiments/{ids[0]}", "/api/v1/splits"):
                started = time.monotonic()
                answer = client.get(path)
                took = time.monotonic() - started
                assert answer.status_code == 503, (path, answer.status_code, answer.text)
                assert int(answer.headers["Retry-After"]) > 0
                assert "database is unreachable" in answer.json()["detail"]
                assert took < 5, f"GET {path} took {took:.1f} s with the database down"
            cancelled = client.post(f"/api/v1/experiments/{ids[0]}/cancel")
            assert cancelled.status_code == 503, cancelled.text
            wait_for(lambda: all(f"experiment {i}: the database is unreachable" in worker.read_text() for i in ids),
                     30, "the worker to receive both messages and keep them for a retry")
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        finally:
            postgres.start()
        back = time.monotonic()

        first_start = wait_for(lambda: "running" in statuses(sessions, ids).values()
                               or set(statuses(sessions, ids).values()) & {"succeeded", "failed"},
                               30, "a run to start after the database's return", interval_s=0.1)
        start_s = time.monotonic() - back
        assert first_start and start_s < 10, f"the first run started {start_s:.1f} s after the database's return"
        assert client.get("/api/v1/experiments").status_code == 200
    for experiment_id in ids:
        wait_for(lambda e=experiment_id: statuses(sessions, [e])[e] in ("succeeded", "failed", "cancelled"), 120,
                 f"run {experiment_id} to finish")
    finished_s = time.monotonic() - back
    print(f"\ndatabase stopped {OUTAGE_S} s: the first run started {start_s:.1f} s after its return, "
          f"both finished after {finished_s:.1f} s")
    assert statuses(sessions, ids) == dict.fromkeys(ids, "succeeded")
    with session_scope(sessions) as session:
        for experiment_id in ids:
            rows = session.execute(select(Metric.name, Metric.step).where(Metric.experiment_id == experiment_id)).all()
            assert max(Counter(map(tuple, rows)).values()) == 1, "a metric point stored twice"
            assert sorted(s for n, s in rows if n == "train/loss") == list(range(1, EPOCHS * STEPS_PER_EPOCH + 1))
            assert sorted(s for n, s in rows if n == "val/loss") == [
                e * STEPS_PER_EPOCH for e in range(1, EPOCHS + 1)]


def test_only_errors_that_say_the_database_cannot_be_reached_count_as_unreachable(postgres):
    """A statement the database refuses stays a bug (the api's plain 500, the worker's failed
    run); a refused or lost connection is an outage (503, a kept message)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from store.db import make_engine, unreachable

    engine = make_engine(postgres.url)
    try:
        for statement in ("SELECT 1/0", "SELECT * FROM no_such_table", "SELEC 1"):
            with pytest.raises(DBAPIError) as refused, engine.connect() as connection:
                connection.execute(text(statement))
            assert not unreachable(refused.value), statement
        connection = engine.connect()
        connection.execute(text("SELECT 1"))
        postgres.stop()
        try:
            with pytest.raises(DBAPIError) as lost:
                connection.execute(text("SELECT 1"))
            assert unreachable(lost.value)
            connection.close()
            with pytest.raises(DBAPIError) as down:
                engine.connect()
            assert unreachable(down.value)
        finally:
            postgres.start()
    finally:
        engine.dispose()
    assert not unreachable(ValueError("not a database error"))
