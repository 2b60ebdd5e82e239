"""A study end to end on real servers: the api (its study controller running in the background)
on PostgreSQL, Redis, and a real ``descent worker``.  A TPE study with ASHA pruning over a
conditional space runs to its budget, its pruned trials stopped early by Optuna's successive
halving, and it survives an api restart: the api is stopped with trials still to make, and a new
api process (a new app on the same database) carries on from the database alone."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.identity import TEST_HOSTS, admin_token, bearer
from tests.services import scratch_database
from tests.worker.test_celery_worker import Cluster, RedisServer, _free_port, _wait

pytestmark = pytest.mark.integration

EPOCHS = 9


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
def running(database_url, redis_server, tmp_path):
    cluster = Cluster(database_url, redis_server, tmp_path)
    yield cluster
    cluster.stop()


def _api(cluster: Cluster, token: str) -> TestClient:
    settings = cluster.settings.model_copy(update={"allowed_hosts": TEST_HOSTS})
    return TestClient(create_app(settings, reconcile_interval_s=0.5), headers=bearer(token))


SPACE = {"solver.name": {"type": "categorical", "values": ["adam", "sgd"], "when": {
    "adam": {"solver.base_lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}},
    "sgd": {"solver.base_lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}},
}}}


def test_a_tpe_study_with_asha_runs_on_a_real_worker_and_survives_an_api_restart(running):
    running.start_worker()
    token = admin_token(running.sessions)
    started = time.monotonic()
    with _api(running, token) as api:
        split = api.post("/api/v1/splits", json={"dataset": "iris", "strategy": "stratified"}).json()
        body = {"name": "tpe-asha", "space": SPACE, "strategy": "tpe", "seed": 3,
                "base": {"name": "b", "split_id": split["id"], "architecture": {"name": "mlp", "width": 16},
                         "solver": {"name": "adam"}, "training": {"epochs": EPOCHS, "batch_size": 16}},
                "objective": {"metric": "val/accuracy"}, "pruner": {"name": "asha", "reduction_factor": 3},
                "budget": {"max_trials": 6, "parallel": 2}}
        created = api.post("/api/v1/studies", json=body)
        assert created.status_code == 201, created.text
        study_id = created.json()["id"]
        finished = ("succeeded", "pruned", "failed", "cancelled")
        _wait(lambda: sum(t["status"] in finished for t in api.get(f"/api/v1/studies/{study_id}").json()["trials"])
              >= 2, 120, "two trials to finish")
    # no api: the trials sent still train, but nobody makes new ones
    with running.sessions() as session:
        from store.repositories import studies

        made = len(studies.trials(session, study_id))
    assert made < 6
    time.sleep(1.5)
    with running.sessions() as session:
        assert len(studies.trials(session, study_id)) == made, "no trial is made without an api"

    print(f"two trials finished {time.monotonic() - started:.1f} s after the start")
    with _api(running, token) as api:  # a new api process: it carries on from the database
        done = _wait(lambda: (s := api.get(f"/api/v1/studies/{study_id}").json())["status"] != "running" and s,
                     240, "the study to finish", interval_s=0.5)
        assert done["status"] == "done", done
        trials = done["trials"]
        assert [t["number"] for t in trials] == list(range(6))
        assert {t["status"] for t in trials} <= {"succeeded", "pruned"}, trials
        for trial in trials:
            solver, lr = trial["params"]["solver.name"], trial["params"]["solver.base_lr"]
            assert solver in ("adam", "sgd") and 1e-4 <= lr <= (0.1 if solver == "adam" else 1.0)
            run = api.get(f"/api/v1/experiments/{trial['experiment_id']}").json()
            assert run["spec"]["solver"]["name"] == solver and run["spec"]["solver"]["base_lr"] == lr
            if trial["status"] == "pruned":
                # ASHA's rungs are at epochs 1, 3, 9: a pruned trial stopped at a rung, before the end
                assert run["epoch"] in (1, 3) and "asha pruner" in run["stop_reason"]
            else:
                assert run["epoch"] == EPOCHS
        assert done["counts"].get("pruned", 0) >= 1, "with one worker ASHA prunes a trial worse at a rung"
        assert done["best"]["value"] == max(t["value"] for t in trials if t["status"] == "succeeded")
