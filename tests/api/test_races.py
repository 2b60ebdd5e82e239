"""POST/GET races against real databases: the spec resolved and stored in the caller's project,
the job sent to the lab queue after commit, a warning while no lab worker is alive, the result the
lab worker stored read back, the recent list without results, bad fields 422 at the field, and a
send the broker refused marked failed."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.lab.functions import FUNCTIONS
from core.queue import RACE_TASK
from store.models import Race
from store.repositories import lab_jobs, workers
from tests.identity import bearer, make_user, new_project, token_for
from worker.lab.race import run_race

API = "/api/v1"


def body(**fields) -> dict:
    return {"function": "rosenbrock", "steps": 30, "racers": [
        {"solver": {"name": "adam", "base_lr": 0.05}, "scheduler": {"name": "cosineannealinglr"}},
        {"label": "heavy ball", "solver": {"name": "sgd", "base_lr": 0.001, "momentum": 0.9}},
    ], **fields}


def test_a_race_is_stored_resolved_and_sent_after_commit_with_a_warning_while_no_lab_worker_lives(client, lab_sent):
    r = client.post(f"{API}/races", json=body())
    assert r.status_code == 201, r.text
    race = r.json()
    assert (race["status"], race["result"], race["error"]) == ("queued", None, None)
    assert race["spec"]["start"] == list(FUNCTIONS["rosenbrock"].start)
    assert [racer["label"] for racer in race["spec"]["racers"]] == ["adam lr=0.05", "heavy ball"]
    assert race["spec"]["racers"][0]["scheduler"]["T_max"] == 30  # one epoch per step
    assert lab_sent.sent == [(RACE_TASK, race["id"])]
    assert "descent worker --queue lab" in race["warning"]
    assert client.get(f"{API}/races/{race['id']}").json() == {**race, "warning": None}


def test_no_warning_while_a_lab_worker_beats(client, session_factory):
    with session_factory() as s:
        workers.beat(s, "host:1", "host", ["lab"], 0)
        s.commit()
    assert client.post(f"{API}/races", json=body()).json()["warning"] is None


def test_the_result_the_lab_worker_stored_is_read_back_and_lists_leave_it_out(client, session_factory):
    first = client.post(f"{API}/races", json=body(steps=5)).json()
    second = client.post(f"{API}/races", json=body(function="booth", steps=5)).json()
    with session_factory() as s:
        job = lab_jobs.claim(s, Race, first["id"])
        lab_jobs.complete(s, Race, first["id"], run_race(job))
        s.commit()
    done = client.get(f"{API}/races/{first['id']}").json()
    assert done["status"] == "done" and done["finished_at"] is not None
    assert [len(r["trajectory"]) for r in done["result"]["racers"]] == [6, 6]
    assert done["result"]["racers"][1]["label"] == "heavy ball"
    listed = client.get(f"{API}/races").json()["items"]
    assert [item["id"] for item in listed][:2] == [second["id"], first["id"]]
    assert all(item["result"] is None for item in listed)


@pytest.mark.parametrize(("fields", "loc"), [
    ({"function": "rosenbrok"}, ["body", "function"]),
    ({"steps": 0}, ["body", "steps"]),
    ({"start": [0, "far"]}, ["body", "start", 1]),
    ({"racers": [{"solver": {"name": "kfac"}}]}, ["body", "racers", 0, "solver"]),
    ({"racers": [{"solver": {"name": "adm"}}]}, ["body", "racers", 0, "solver"]),
    ({"racers": [{"solver": {"name": "sgd"}}] * 9}, ["body", "racers"]),
    ({"racers": [{"solver": {"name": "sgd"}, "scheduler": {"name": "onecyclelr", "total_steps": 3}}]},
     ["body", "racers", 0, "scheduler", "total_steps"]),
    ({"project_id": 999_999}, ["body", "project_id"]),
])
def test_bad_input_is_422_at_its_field(client, lab_sent, fields, loc):
    r = client.post(f"{API}/races", json=body(**fields))
    assert r.status_code == 422, r.text
    assert loc in [problem["loc"] for problem in r.json()["detail"]]
    assert lab_sent.sent == []


def test_a_misspelt_solver_is_answered_with_the_name_it_resembles(client):
    detail = client.post(f"{API}/races", json=body(racers=[{"solver": {"name": "adm"}}])).json()["detail"]
    assert "adam" in " ".join(problem["msg"] for problem in detail)


def test_another_projects_race_does_not_exist_for_you(app, client, session_factory):
    race = client.post(f"{API}/races", json=body()).json()
    other = new_project(session_factory, "elsewhere")
    with session_factory() as s:
        token = token_for(s, make_user(s, "outsider", roles={other: "owner"}))
        s.commit()
    with TestClient(app, headers=bearer(token)) as outsider:
        assert outsider.get(f"{API}/races/{race['id']}").status_code == 404
        assert outsider.get(f"{API}/races").json()["items"] == []


def test_a_race_the_broker_refused_is_marked_failed_saying_why(client, lab_sent):
    lab_sent.refuse = True
    race = client.post(f"{API}/races", json=body()).json()
    stored = client.get(f"{API}/races/{race['id']}").json()
    assert stored["status"] == "failed" and "broker" in stored["error"]


def test_the_functions_are_listed_with_their_minima(client):
    items = client.get(f"{API}/races/functions").json()["items"]
    assert [f["name"] for f in items] == list(FUNCTIONS)
    himmelblau = next(f for f in items if f["name"] == "himmelblau")
    assert len(himmelblau["minima"]) == 4 and himmelblau["global_minima"] is True


def test_a_lab_worker_is_not_counted_as_a_training_worker(client, session_factory):
    with session_factory() as s:
        workers.beat(s, "host:2", "host", ["lab"], 0)
        s.commit()
    queues = client.get(f"{API}/queue").json()["queues"]
    assert queues["gpu"]["workers"] == queues["cpu"]["workers"] == 0 and queues["lab"]["workers"] == 1
