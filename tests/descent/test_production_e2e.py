"""The production topology for real on this machine: ``descent migrate``, then ``descent api``
and ``descent worker`` as separate processes against a scratch PostgreSQL database and a
dedicated Redis database; an admin and a token made with ``descent user create`` and ``descent
token create`` as an operator would; driven through the HTTP client with that token: train, read
metrics and the trained weights, cancel a running experiment."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from descent.client import Client
from tests.services import scratch_database, scratch_redis

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 12  # this test's own database number, flushed before and after


@pytest.fixture
def scratch_postgres():
    with scratch_database(migrate=False) as url:  # `descent migrate` is part of what is tested
        yield url


@pytest.fixture
def scratch_redis_url():
    with scratch_redis(REDIS_DB) as url:
        yield url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    def __init__(self, name: str, args: list[str], env: dict[str, str], folder: Path):
        self.name = name
        self.log_path = folder / f"{name}.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "descent.cli", *args], env=env, cwd=folder,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return f"--- {self.name} (exit {self.process.returncode}) ---\n{self.log_path.read_text()}"

    def stop(self, timeout: float = 30) -> bool:
        """SIGTERM; True when the process ended by itself within ``timeout`` (no SIGKILL needed)."""
        graceful = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                graceful = False
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        return graceful


def wait_for(predicate, timeout: float, what: str, logs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}\n" + "\n".join(p.output() for p in logs))


def operator_token(env: dict[str, str], folder: Path) -> str:
    """The first admin and a token of theirs, made on the database as an operator does."""
    def descent(*args: str, **extra: str) -> str:
        done = subprocess.run([sys.executable, "-m", "descent.cli", *args], env={**env, **extra}, cwd=folder,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    descent("user", "create", "admin", "--admin", "--password-env", "ADMIN_PASSWORD",
            ADMIN_PASSWORD="production e2e password")
    return descent("token", "create", "admin", "--name", "e2e").strip()


def test_api_and_worker_as_separate_processes_on_postgres_and_redis(tmp_path, scratch_postgres, scratch_redis_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCENT_")}
    env.update(
        PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1",
        DESCENT_DATABASE_URL=scratch_postgres, DESCENT_BROKER_URL=scratch_redis_url,
        DESCENT_DATA_DIR=str(tmp_path / "data"), DESCENT_HEARTBEAT_S="0.5",
    )
    migrate = subprocess.run([sys.executable, "-m", "descent.cli", "migrate"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    token = operator_token(env, tmp_path)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = Process("api", ["api", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path)
    worker = Process("worker", ["worker", "--queue", "cpu"], env, tmp_path)
    procs = (api, worker)

    def healthy():
        assert api.process.poll() is None, api.output()
        try:
            return httpx.get(url + "/api/v1/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, 90, "the api's /health", procs)
        with Client(url, token) as client:
            split = client.create_split("iris", seed=0)
            base = {"split_id": split["id"], "architecture": {"name": "mlp", "depth": 1, "width": 16},
                    "training": {"epochs": 3, "batch_size": 16, "device": "cpu"}}
            run = client.submit({**base, "name": "prod-adam", "solver": {"name": "adam", "base_lr": 0.01}})
            done = client.wait(run["id"], timeout=180)
            assert done["status"] == "succeeded", (done, *[p.output() for p in procs])
            assert done["progress"] == pytest.approx(1.0)

            series = client.metrics(run["id"])
            losses = series["train/epoch_loss"].values
            assert len(losses) == 3 and all(v == v for v in losses)
            assert series["test/accuracy"].values[-1] > 1 / 3  # better than chance on 3 balanced classes

            import torch

            state = torch.load(io.BytesIO(client.checkpoint(run["id"])), weights_only=True)
            tensors = list(state.values())
            assert tensors[0].shape == (16, 4)  # first layer of an mlp of width 16 on iris's 4 features
            assert tensors[-1].shape == (3,)  # last bias: iris's 3 classes

            # a long run, cancelled while it trains, ends as cancelled
            long = client.submit({**base, "name": "prod-long", "solver": {"name": "adam", "base_lr": 0.01},
                                  "training": {**base["training"], "epochs": 100_000}})
            wait_for(lambda: client.experiment(long["id"])["status"] == "running", 60, "the long run to start", procs)
            client.cancel(long["id"])
            ended = client.wait(long["id"], timeout=60)
            assert ended["status"] == "cancelled", ended
    finally:
        graceful = {p.name: p.stop() for p in procs}
    assert graceful == {"api": True, "worker": True}, "\n".join(p.output() for p in procs)
    # uvicorn re-raises the SIGTERM it handled once its shutdown is complete
    assert api.process.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in api.output()
