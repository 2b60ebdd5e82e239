"""``Client.landscape`` and ``descent landscape`` against a real api (uvicorn, SQLite) whose lab
sender runs the real lab job (``worker.lab.landscape``) on a run trained by the real engine: the
printed centre is the run's recorded validation loss, asking again prints the stored landscape
without computing it, a run that cannot have one says why, and the command imports nothing of
the server."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from descent.cli import main
from descent.client import Client
from descent.commands.landscape import describe

ROOT = Path(__file__).resolve().parents[2]
SPEC = {"architecture": {"name": "mlp", "width": 16}, "solver": {"name": "adam", "base_lr": 0.01},
        "training": {"epochs": 2, "batch_size": 32}}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import uvicorn

    from api.app import create_app
    from core.settings import Settings
    from store.db import make_engine, make_sessionmaker, session_scope
    from store.migrate import upgrade
    from store.models import Landscape
    from store.repositories import lab_jobs
    from tests.identity import admin_token
    from worker.lab.landscape import compute_landscape
    from worker.run import Runtime

    folder = tmp_path_factory.mktemp("api")
    settings = Settings(_env_file=None, data_dir=folder, database_url=None, broker_url=None, export_onnx=False)
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    runtime = Runtime(settings, make_sessionmaker(engine), host="test:1")
    token = admin_token(runtime.sessions)
    computed: list[int] = []

    def lab_job(landscape_id: int) -> None:  # what the lab worker's task does (worker.lab.tasks.run_job)
        with session_scope(runtime.sessions) as session:
            job = lab_jobs.claim(session, Landscape, landscape_id)
        result = compute_landscape(job, runtime)
        with session_scope(runtime.sessions) as session:
            lab_jobs.complete(session, Landscape, landscape_id, result)
        computed.append(landscape_id)

    app = create_app(settings, enqueuer=lambda i, q: None, reconcile_interval_s=0, broker_check=lambda: None,
                     lab_sender=lambda task, job_id: threading.Thread(target=lab_job, args=(job_id,)).start())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (server.started and server.servers):
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        yield url, token, runtime, computed
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


@pytest.fixture(scope="module")
def trained(served) -> int:
    from worker.run import run_experiment

    url, token, runtime, _ = served
    with Client(url, token) as client:
        split = client.create_split("iris", seed=0)
        run = client.submit({"name": "iris", "split_id": split["id"], **SPEC})
    assert run_experiment(run["id"], runtime) == "succeeded"
    return run["id"]


def test_the_client_waits_for_the_landscape_and_asking_again_reuses_it(served, trained):
    url, token, _, computed = served
    with Client(url, token) as client:
        line = client.landscape(trained, dims=1, points=7, timeout=120)
        assert line["status"] == "done" and len(line["result"]["val"]["loss"]) == 7
        recorded = client.metrics(trained, names=["val/loss"])["val/loss"].last
        assert line["result"]["centre"]["val"]["loss"] == pytest.approx(recorded, abs=1e-6)
        again = client.landscape(trained, dims=1, points=7, span=None)
        assert again == line and computed.count(line["id"]) == 1
        assert [item["id"] for item in client.landscapes(trained)] == [line["id"]]


def test_descent_landscape_prints_a_line_and_a_plane(served, trained, capsys):
    url, token, _, _ = served
    assert main(["landscape", str(trained), "--url", url, "--token", token, "--dims", "1", "--points", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("landscape ") and "1-D, 5 points, span ±1, last weights, seed 0" in out[0]
    assert out[1].startswith("centre (the run's weights): train loss") and "val loss" in out[1]
    assert out[3].split() == ["α", "train", "loss", "val", "loss"]
    assert [float(row.split()[0]) for row in out[4:]] == [-1.0, -0.5, 0.0, 0.5, 1.0]

    assert main(["landscape", str(trained), "--url", url, "--token", token, "--points", "5", "--span", "0.5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "2-D, 5×5, span ±0.5" in out[0] and out[-1].startswith("val loss over the plane: min ")


def test_a_run_that_cannot_have_one_is_told_why(served, capsys):
    url, token, _, _ = served
    with Client(url, token) as client:
        split = client.create_split("iris", seed=1)
        queued = client.submit({"name": "waiting", "split_id": split["id"], **SPEC})
    assert main(["landscape", str(queued["id"]), "--url", url, "--token", token]) == 1
    assert "is queued: ask for its landscape once it has succeeded" in capsys.readouterr().err


def test_describe_tells_a_failed_landscape():
    failed = {"id": 3, "experiment_id": 9, "status": "failed", "error": "the broker did not take it", "result": None,
              "spec": {"dims": 2, "points": 25, "span": 1.0, "which": "last", "seed": 0}}
    assert describe(failed) == ["landscape 3 of experiment 9: failed (2-D, 25×25, span ±1, last weights, seed 0)",
                                "error: the broker did not take it"]


def test_the_command_imports_nothing_of_the_server():
    code = textwrap.dedent("""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("api", "store", "worker", "optim", "torch", "sqlalchemy", "celery"):
                    raise ImportError("blocked: " + name)

        sys.meta_path.insert(0, Block())
        import argparse
        from descent.commands import landscape
        landscape.register("landscape", argparse.ArgumentParser())
        print("ok")
        """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
