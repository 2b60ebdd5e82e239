"""``Client.create_race`` and ``descent race`` against a real api (uvicorn, SQLite) whose lab sender
runs the real lab job (``worker.lab.race.run_race``): the race waited for and printed lowest final
value first, each value the function at the printed point, the dashboard page named; a bad spec
answered with the field at fault."""

from __future__ import annotations

import json
import threading
import time

import pytest

from descent.cli import main
from descent.client import ApiError, Client

SPEC = {"function": "booth", "start": [-8, -8], "steps": 60, "racers": [
    {"label": "plain", "solver": {"name": "sgd", "base_lr": 0.001}},
    {"solver": {"name": "lbfgs", "base_lr": 1.0}},
]}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import uvicorn

    from api.app import create_app
    from core.settings import Settings
    from store.db import make_engine, make_sessionmaker, session_scope
    from store.migrate import upgrade
    from store.models import Race
    from store.repositories import lab_jobs
    from tests.identity import admin_token
    from worker.lab.race import run_race

    folder = tmp_path_factory.mktemp("api")
    settings = Settings(_env_file=None, data_dir=folder, database_url=None, broker_url=None, export_onnx=False)
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    token = admin_token(sessions)

    def lab_job(race_id: int) -> None:  # what the lab worker's task does (worker.lab.tasks.run_job)
        with session_scope(sessions) as session:
            job = lab_jobs.claim(session, Race, race_id)
        result = run_race(job)
        with session_scope(sessions) as session:
            lab_jobs.complete(session, Race, race_id, result)

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
        yield url, token
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


def booth(x: float, y: float) -> float:
    return (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2


def test_the_client_waits_for_the_race_and_reads_it_back(served):
    url, token = served
    with Client(url, token) as client:
        race = client.create_race(SPEC, timeout=60)
        assert race["status"] == "done"
        for racer in race["result"]["racers"]:
            assert len(racer["trajectory"]) == SPEC["steps"] + 1
            assert racer["loss"][-1] == pytest.approx(booth(*racer["trajectory"][-1]), abs=1e-12)
        assert client.race(race["id"]) == {**race, "warning": None}
        assert client.races()[0]["id"] == race["id"]


def test_descent_race_prints_each_racer_lowest_first_and_the_page(served, tmp_path, capsys):
    url, token = served
    path = tmp_path / "race.json"
    path.write_text(json.dumps(SPEC))
    assert main(["race", str(path), "--url", url, "--token", token]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("race ") and "booth from (-8, -8), 60 steps" in lines[0]
    rows = [line.split() for line in lines[2:4]]
    assert [row[0] for row in rows] == ["lbfgs", "plain"]  # L-BFGS solves a quadratic: it ends lowest
    for row in rows:
        x, y = (float(v) for v in " ".join(row[-2:]).strip("()").split(", "))
        assert float(row[-3]) == pytest.approx(booth(x, y), rel=1e-3, abs=1e-6)
    assert lines[-1].startswith(f"watch it: {url}/#/races/")


def test_a_bad_spec_is_refused_naming_the_field(served):
    url, token = served
    with Client(url, token) as client, pytest.raises(ApiError) as caught:
        client.create_race({**SPEC, "racers": [{"solver": {"name": "kfac"}}]})
    assert caught.value.status_code == 422 and "racers.0.solver" in str(caught.value)
