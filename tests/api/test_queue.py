"""``GET /queue``: every project's counts, only the caller's queued runs, and for each the cause
it waits for in the situation that makes it, in words that name what to do; the lab queue's
races and landscapes and lab workers counted beside the training queues."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.queue.service import START_WORKER
from core.queue import LAB_QUEUE
from store.models import Experiment, Landscape, Worker, utcnow
from store.repositories import workers
from tests.api.conformance import attach
from tests.identity import bearer, make_user, new_project, token_for

API = "/api/v1"


@pytest.fixture
def project_a(session_factory):
    return new_project(session_factory, "A")


@pytest.fixture
def viewer(app, session_factory, openapi_document, project_a):
    """A viewer of project A alone (the ``client`` admin's runs go to the default project)."""
    with session_factory() as s:
        token = token_for(s, make_user(s, "viewer-a", roles={project_a: "viewer"}))
        s.commit()
    with TestClient(app, headers=bearer(token)) as c:
        attach(c, openapi_document)
        yield c


def _split(client, project_id: int | None = None) -> int:
    body = {"dataset": "iris", "seed": 1, **({"project_id": project_id} if project_id else {})}
    response = client.post(f"{API}/splits", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _submit(client, split_id: int, name: str) -> int:
    response = client.post(f"{API}/experiments", json={
        "name": name, "split_id": split_id, "architecture": {"name": "linear"}, "solver": {"name": "sgd"},
        "training": {"device": "cpu"}})
    assert response.status_code == 201, response.text
    assert response.json()["queue"] == "cpu"
    return response.json()["id"]


def _update(session_factory, model, where, **values) -> None:
    with session_factory() as s:
        s.execute(update(model).where(where).values(**values))
        s.commit()


def _worker(session_factory, worker_id: str, queues: list[str], seen_ago: float = 0) -> None:
    with session_factory() as s:
        workers.beat(s, worker_id, worker_id.split(":")[0], queues, gpus=0)
        s.commit()
    _update(session_factory, Worker, Worker.id == worker_id, last_seen=utcnow() - timedelta(seconds=seen_ago))


def _training(session_factory, client, split_id: int, worker_id: str) -> int:
    eid = _submit(client, split_id, f"on-{worker_id}")
    _update(session_factory, Experiment, Experiment.id == eid, status="running", worker_host=worker_id,
            started_at=utcnow(), heartbeat_at=utcnow())
    return eid


def _queue(client) -> dict:
    response = client.get(f"{API}/queue")
    assert response.status_code == 200, response.text
    return response.json()


def test_anonymous_gets_401(anonymous):
    response = anonymous.get(f"{API}/queue")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_counts_cover_every_project_and_waiting_only_the_callers(client, viewer, session_factory, project_a):
    default_split, a_split = _split(client), _split(client, project_a)
    theirs = _submit(client, default_split, "admins-run")
    mine = _submit(client, a_split, "viewers-run")
    _training(session_factory, client, default_split, "gone:1")

    body = _queue(viewer)

    assert set(body["queues"]) == {"gpu", "cpu", "lab"}
    cpu = body["queues"]["cpu"]
    assert (cpu["queued"], cpu["running"], cpu["workers"], cpu["idle_workers"]) == (2, 1, 0, 0)
    assert body["queues"]["gpu"] == {"queued": 0, "running": 0, "workers": 0, "idle_workers": 0,
                                     "oldest_queued_s": None}
    [waiting] = body["waiting"]
    assert (waiting["id"], waiting["project_id"], waiting["queue"], waiting["position"]) == (mine, project_a, "cpu", 2)
    assert 0 <= waiting["waited_s"] <= cpu["oldest_queued_s"] + 1
    assert {w["id"] for w in _queue(client)["waiting"]} == {theirs, mine}  # the admin sees every project


def test_a_run_the_broker_never_took_says_to_check_the_broker(client, session_factory):
    _worker(session_factory, "idle:1", ["cpu"])
    eid = _submit(client, _split(client), "unsent")
    _update(session_factory, Experiment, Experiment.id == eid, enqueued_at=None)
    [waiting] = _queue(client)["waiting"]
    assert waiting["cause"] == "unsent"
    assert "broker" in waiting["reason"] and "GET /health" in waiting["reason"]


@pytest.mark.parametrize("queues, stale", [([], False), (["gpu"], False), (["cpu"], True)])
def test_no_alive_worker_on_its_queue_says_how_to_start_one(client, session_factory, settings, queues, stale):
    if queues:
        _worker(session_factory, "w:1", queues, seen_ago=workers.alive_within_s(settings) + 60 if stale else 0)
    _submit(client, _split(client), "orphan")
    body = _queue(client)
    [waiting] = body["waiting"]
    assert body["queues"]["cpu"]["workers"] == 0
    assert waiting["cause"] == "no_worker"
    assert waiting["reason"] == f"no worker is serving the 'cpu' queue; start one: {START_WORKER['cpu']}"
    assert "descent worker --queue cpu" in waiting["reason"]


def test_every_worker_busy_names_them_and_the_runs_ahead(client, session_factory):
    split = _split(client)
    busy = ["busy:1", "busy:2"]
    for worker_id in busy:
        _worker(session_factory, worker_id, ["cpu"])
        _training(session_factory, client, split, worker_id)
    first, second = _submit(client, split, "first"), _submit(client, split, "second")

    body = _queue(client)

    assert (body["queues"]["cpu"]["workers"], body["queues"]["cpu"]["idle_workers"]) == (len(busy), 0)
    by_id = {w["id"]: w for w in body["waiting"]}
    assert [by_id[first]["position"], by_id[second]["position"]] == [1, 2]
    assert {w["cause"] for w in by_id.values()} == {"busy"}
    assert by_id[second]["reason"].startswith(f"all {len(busy)} workers on the 'cpu' queue are busy; 1 run ahead of it")
    assert by_id[first]["reason"].startswith(f"all {len(busy)} workers on the 'cpu' queue are busy; 0 runs ahead of it")


def test_an_idle_worker_takes_the_first_within_seconds(client, session_factory):
    _worker(session_factory, "idle:1", ["cpu", "gpu"])
    split = _split(client)
    first, second = _submit(client, split, "first"), _submit(client, split, "second")

    body = _queue(client)

    assert (body["queues"]["cpu"]["workers"], body["queues"]["cpu"]["idle_workers"]) == (1, 1)
    by_id = {w["id"]: w for w in body["waiting"]}
    assert by_id[first]["cause"] == "starting" and "about to start" in by_id[first]["reason"]
    assert by_id[second]["cause"] == "busy"
    assert by_id[second]["reason"].startswith("1 run ahead of it on the 'cpu' queue and 1 idle worker to take them")


def _race(client) -> int:
    response = client.post(f"{API}/races", json={"function": "booth", "steps": 10,
                                                  "racers": [{"solver": {"name": "sgd"}}]})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _running_landscape(session_factory, client) -> None:
    eid = _submit(client, _split(client), "landscaped")
    _update(session_factory, Experiment, Experiment.id == eid, status="succeeded")
    with session_factory() as s:
        s.add(Landscape(experiment_id=eid, spec={"dims": 1}, status="running", started_at=utcnow()))
        s.commit()


@pytest.mark.parametrize("lab_workers, idle", [(0, 0), (1, 0), (2, 1)])
def test_the_lab_queue_counts_races_landscapes_and_lab_workers(client, viewer, session_factory, lab_workers, idle):
    for n in range(lab_workers):
        _worker(session_factory, f"lab:{n}", [LAB_QUEUE])
    _worker(session_factory, "trainer:9", ["cpu"])
    _race(client)
    _running_landscape(session_factory, client)

    body = _queue(viewer)  # counts are every project's: the viewer sees the admin's race

    lab = body["queues"][LAB_QUEUE]
    assert (lab["queued"], lab["running"], lab["workers"], lab["idle_workers"]) == (1, 1, lab_workers, idle)
    assert 0 <= lab["oldest_queued_s"] < 60
    assert body["queues"]["cpu"]["workers"] == 1 and body["queues"]["cpu"]["running"] == 0
    assert body["waiting"] == []  # lab jobs are counted, not listed
