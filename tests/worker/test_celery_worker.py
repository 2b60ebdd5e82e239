"""Real worker processes (``descent worker`` → Celery, solo pool) against a real PostgreSQL and
a Redis server of this module's own (so it can be restarted), never ``task_always_eager``.

The first test submits through the api; the others create and enqueue experiments the way the
api does (a row through the repository, then ``send_training`` after the commit).  Covered: a run
end to end with its metrics and downloadable weights; ``kill -9`` of the worker
mid-run, after which a new worker finishes it from its checkpoint with every step's metrics
present; a Redis restart with experiments queued; cancel in the middle of an epoch."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from sqlalchemy import select

from core.queue import make_celery, send_training
from core.settings import Settings
from store.db import session_scope
from store.models import Experiment, Metric, Worker
from store.repositories import experiments
from tests.services import scratch_database
from tests.worker.records import add_builtin_split, add_experiment, sessions_for
from tests.worker.splits import builtin_split, make_spec
from worker.data import prepare
from worker.engine import train
from worker.sink import ListSink

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throwaway redis-server without persistence: a restart loses every queued message."""

    def __init__(self, port: int):
        self.port = port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait(lambda: _can_connect(self.port), 10, "redis-server to accept connections")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def _can_connect(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _wait(predicate, timeout_s: float, what: str, interval_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer(_free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def database_url():
    with scratch_database() as url:
        yield url


@pytest.fixture
def cluster(database_url, redis_server, tmp_path):
    return Cluster(database_url, redis_server, tmp_path)


class Cluster:
    """Worker processes and a sender sharing one database, broker and data folder."""

    def __init__(self, database_url: str, redis: RedisServer, data_dir: Path):
        self.redis = redis
        self.env = {
            **os.environ,
            "DESCENT_DATABASE_URL": database_url,
            "DESCENT_BROKER_URL": f"redis://127.0.0.1:{redis.port}/0",
            "DESCENT_DATA_DIR": str(data_dir),
            "DESCENT_HEARTBEAT_S": "0.2",
            "DESCENT_STALE_HEARTBEAT_S": "3",
            "DESCENT_REQUEUE_AFTER_S": "2",
            "OMP_NUM_THREADS": "1",  # the same numerics as this process's single torch thread
            "PYTHONUNBUFFERED": "1",
        }
        self.settings = Settings(database_url=database_url, broker_url=self.env["DESCENT_BROKER_URL"], data_dir=data_dir)
        self.sessions = sessions_for(database_url)
        self.sender = make_celery(self.settings)
        self.workers: list[subprocess.Popen] = []
        self.logs = data_dir / "worker.log"

    def start_worker(self) -> subprocess.Popen:
        with session_scope(self.sessions) as session:
            seen = {w.id for w in session.scalars(select(Worker))}
        log = open(self.logs, "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [sys.executable, "-m", "descent.cli", "worker", "--queue", "cpu", "--loglevel", "INFO"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.workers.append(process)

        def registered() -> bool:
            assert process.poll() is None, f"worker exited with {process.returncode}: {self.logs.read_text()[-3000:]}"
            with session_scope(self.sessions) as session:
                return any(w.id not in seen for w in session.scalars(select(Worker)))

        _wait(registered, 60, "the worker to register")
        return process

    def submit(self, spec) -> int:
        experiment_id = add_experiment(self.sessions, spec)
        with session_scope(self.sessions) as session:
            experiments.mark_enqueued(session, [experiment_id])
        send_training(self.sender, experiment_id, "cpu")
        return experiment_id

    def experiment(self, experiment_id: int) -> Experiment:
        with session_scope(self.sessions) as session:
            return experiments.get(session, experiment_id)

    def wait_status(self, experiment_id: int, statuses: tuple[str, ...], timeout_s: float = 90) -> Experiment:
        return _wait(
            lambda: (e := self.experiment(experiment_id)).status in statuses and e,
            timeout_s, f"experiment {experiment_id} to reach {statuses}", interval_s=0.1,
        )

    def steps(self, experiment_id: int, name: str) -> list[int]:
        with session_scope(self.sessions) as session:
            return list(session.scalars(
                select(Metric.step).where(Metric.experiment_id == experiment_id, Metric.name == name).order_by(Metric.step)
            ))

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def running(cluster):
    yield cluster
    cluster.stop()


def _spec(cluster, dataset: str, **kwargs):
    split_id = add_builtin_split(cluster.sessions, dataset)
    return make_spec(builtin_split(dataset), **kwargs).model_copy(update={"split_id": split_id})


def test_submit_through_the_api_watch_it_finish_read_metrics_and_download_weights(running):
    import io

    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.identity import TEST_HOSTS, admin_token, bearer

    running.start_worker()
    settings = running.settings.model_copy(update={"allowed_hosts": TEST_HOSTS})
    with TestClient(create_app(settings, reconcile_interval_s=0),
                    headers=bearer(admin_token(running.sessions))) as client:
        split = client.post("/api/v1/splits", json={"dataset": "wine", "strategy": "stratified"})
        assert split.status_code == 201, split.text
        body = {
            "name": "through the api", "split_id": split.json()["id"],
            "architecture": {"name": "mlp", "depth": 1, "width": 32},
            "solver": {"name": "adam", "base_lr": 0.01},
            "training": {"epochs": 4, "batch_size": 16, "device": "auto"},
        }
        created = client.post("/api/v1/experiments", json=body)
        assert created.status_code == 201, created.text
        experiment_id = created.json()["id"]
        finished = _wait(
            lambda: (e := client.get(f"/api/v1/experiments/{experiment_id}").json())["status"]
            in ("succeeded", "failed") and e,
            90, "the experiment to finish", interval_s=0.2,
        )
        assert finished["status"] == "succeeded", finished
        series = client.get(f"/api/v1/experiments/{experiment_id}/metrics",
                            params={"names": "train/loss,val/accuracy,test/accuracy"}).json()["series"]
        steps_per_epoch = -(-split.json()["sizes"]["train"] // 16)
        assert series["train/loss"]["steps"] == list(range(1, 4 * steps_per_epoch + 1))
        assert series["val/accuracy"]["steps"] == [e * steps_per_epoch for e in range(1, 5)]
        weights = client.get(f"/api/v1/experiments/{experiment_id}/checkpoint")
        assert weights.status_code == 200
        state = torch.load(io.BytesIO(weights.content), weights_only=True)
        assert state["net.0.weight"].shape == (32, 13)
        model = client.get(f"/api/v1/experiments/{experiment_id}/model")  # with its preprocessing, for torch alone
        assert model.status_code == 200
        program = torch.export.load(io.BytesIO(model.content))
        assert program.module()(torch.zeros(5, 13)).shape == (5, 3)


def test_kill_9_mid_run_and_another_worker_finishes_from_the_checkpoint(running):
    spec = _spec(running, "digits", epochs=8, batch_size=8, architecture={"name": "mlp", "depth": 2, "width": 128})
    steps_per_epoch = -(-len(builtin_split("digits").x_train) // 8)
    first = running.start_worker()
    experiment_id = running.submit(spec)
    _wait(lambda: running.experiment(experiment_id).epoch >= 2, 120, "two epochs (a checkpoint) to pass")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    killed_at = running.experiment(experiment_id)
    assert killed_at.status == "running" and killed_at.step < 8 * steps_per_epoch

    running.start_worker()
    experiment = running.wait_status(experiment_id, ("succeeded", "failed"), timeout_s=180)
    assert experiment.status == "succeeded", experiment.error
    assert experiment.attempt == 2
    assert running.steps(experiment_id, "train/loss") == list(range(1, 8 * steps_per_epoch + 1))
    assert running.steps(experiment_id, "val/loss") == [e * steps_per_epoch for e in range(1, 9)]

    # resumed exactly: the same weights as an uninterrupted run of the same spec
    whole = train(spec, prepare(builtin_split("digits")), sink=ListSink())
    weights = torch.load(running.settings.checkpoint_path(experiment_id, "final"), weights_only=True)
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(weights[name], tensor), name


def test_no_queued_experiment_is_lost_when_redis_restarts(running):
    running.start_worker()
    specs = [_spec(running, "wine", epochs=40, batch_size=8, seed=s) for s in range(3)]
    ids = [running.submit(spec) for spec in specs]
    running.wait_status(ids[0], ("running",))
    running.redis.stop()  # no persistence: the two queued messages are gone
    time.sleep(1)
    running.redis.start()
    for experiment_id in ids:
        experiment = running.wait_status(experiment_id, ("succeeded", "failed", "cancelled"), timeout_s=120)
        assert experiment.status == "succeeded", experiment.error


def test_cancel_mid_epoch_stops_the_run(running):
    """Epochs of 1078 single-sample steps: the cancel lands inside the epoch it was asked in."""
    running.start_worker()
    # ~3M parameters: Adam alone takes milliseconds a step on any CPU, so an epoch outlasts the cancel
    spec = _spec(running, "digits", epochs=100, batch_size=1, architecture={"name": "mlp", "depth": 4, "width": 1024})
    steps_per_epoch = len(builtin_split("digits").x_train)
    experiment_id = running.submit(spec)
    asked_at = _wait(
        lambda: (s := running.experiment(experiment_id).step) and 50 < s % steps_per_epoch < 300 and s,
        90, "the run to be early in an epoch", interval_s=0.01,
    )
    with session_scope(running.sessions) as session:
        assert experiments.request_cancel(session, experiment_id) == "running"
    requested = time.monotonic()
    experiment = running.wait_status(experiment_id, ("cancelled", "succeeded", "failed"), timeout_s=30)
    assert experiment.status == "cancelled"
    assert time.monotonic() - requested < 5
    last = running.steps(experiment_id, "train/loss")[-1]
    assert last // steps_per_epoch == asked_at // steps_per_epoch and last % steps_per_epoch != 0


def test_descent_worker_gpus_starts_one_gpu_queue_worker_per_card(running):
    """``--gpus 0,1``: two children, each on the gpu queue with its own CUDA_VISIBLE_DEVICES;
    SIGTERM to the parent stops both (a clean shutdown also removes them from ``workers``)."""
    parent = subprocess.Popen(
        [sys.executable, "-m", "descent.cli", "worker", "--gpus", "0,1"], cwd=ROOT, env=running.env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        def registered():
            with session_scope(running.sessions) as session:
                rows = [w for w in session.scalars(select(Worker)) if "gpu" in w.queues]
            return len(rows) == 2 and rows

        rows = _wait(registered, 90, "two gpu workers to register")
        cards = set()
        for row in rows:
            assert row.queues == ["gpu"]
            pid = int(row.id.rsplit(":", 1)[1])
            environ = dict(
                item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item
            )
            cards.add(environ["CUDA_VISIBLE_DEVICES"])
        assert cards == {"0", "1"}
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=40) == 0
        _wait(lambda: not registered(), 10, "the gpu workers to leave the workers table")
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
