"""POST/GET landscapes of a run against real databases: defaults resolved and stored, the job
sent to the lab queue after commit, an identical request answered with the stored one, a run
that cannot have one refused with 409 saying what to do, bad fields 422 at the field, who may do
what, a send the broker refused, and the landscapes going with their run."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from api.experiments.schemas import ModelWhich
from core.lab.landscape import WEIGHTS
from core.queue import LANDSCAPE_TASK
from store.models import Experiment, Landscape
from store.repositories import lab_jobs
from tests.identity import bearer, make_user, token_for

API = "/api/v1"


def _run(client, split, session_factory, status="succeeded") -> int:
    body = {"name": "run", "split_id": split["id"], "architecture": {"name": "mlp"}, "solver": {"name": "sgd"}}
    eid = client.post(f"{API}/experiments", json=body).json()["id"]
    with session_factory() as s:
        s.execute(update(Experiment).where(Experiment.id == eid).values(status=status))
        s.commit()
    return eid


@pytest.fixture
def trained(client, iris_split, session_factory, settings) -> int:
    eid = _run(client, iris_split, session_factory)
    weights = settings.checkpoint_path(eid, "final")
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.write_bytes(b"weights")  # the api only checks they are there; the lab worker loads them
    return eid


def test_a_request_is_stored_with_its_defaults_and_sent_after_commit(client, trained, lab_sent):
    r = client.post(f"{API}/experiments/{trained}/landscapes", json={})
    assert r.status_code == 201, r.text
    landscape = r.json()
    assert (landscape["status"], landscape["experiment_id"], landscape["result"]) == ("queued", trained, None)
    assert landscape["spec"] == {"dims": 2, "points": 25, "span": 1.0, "which": "last", "train_examples": 512,
                                 "val_examples": 512, "seed": 0}
    assert lab_sent.sent == [(LANDSCAPE_TASK, landscape["id"])]
    line = client.post(f"{API}/experiments/{trained}/landscapes", json={"dims": 1}).json()
    assert line["spec"]["points"] == 31
    assert client.get(f"{API}/landscapes/{landscape['id']}").json() == landscape
    listed = client.get(f"{API}/experiments/{trained}/landscapes").json()["items"]
    assert [item["id"] for item in listed] == [line["id"], landscape["id"]]


def test_the_same_request_answers_the_stored_one_and_a_failed_one_is_asked_again(client, trained, lab_sent,
                                                                                 session_factory):
    first = client.post(f"{API}/experiments/{trained}/landscapes", json={"dims": 1}).json()
    # the same once defaults are filled in: no second computation
    again = client.post(f"{API}/experiments/{trained}/landscapes", json={"dims": 1, "points": 31, "span": 1})
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    with session_factory() as s:
        lab_jobs.claim(s, Landscape, first["id"])
        lab_jobs.complete(s, Landscape, first["id"], {"axis": [0.0]})
        s.commit()
    done = client.post(f"{API}/experiments/{trained}/landscapes", json={"dims": 1})
    assert done.status_code == 200 and done.json()["status"] == "done" and done.json()["result"] == {"axis": [0.0]}
    other = client.post(f"{API}/experiments/{trained}/landscapes", json={"dims": 1, "seed": 1})
    assert other.status_code == 201
    with session_factory() as s:
        lab_jobs.fail(s, Landscape, other.json()["id"], "out of memory")
        s.commit()
    retried = client.post(f"{API}/experiments/{trained}/landscapes", json={"dims": 1, "seed": 1})
    assert retried.status_code == 201 and retried.json()["id"] != other.json()["id"]
    assert [task for task, _ in lab_sent.sent] == [LANDSCAPE_TASK] * 3


@pytest.mark.parametrize(("status", "says"), [
    ("queued", "is queued: ask for its landscape once it has succeeded"),
    ("running", "is running: ask for its landscape once it has succeeded"),
    ("failed", "is failed: a landscape needs a run that succeeded"),
    ("succeeded", "stored no weights"),
])
def test_a_run_that_cannot_have_one_is_409_saying_what_to_do(client, iris_split, session_factory, lab_sent,
                                                              status, says):
    eid = _run(client, iris_split, session_factory, status)
    r = client.post(f"{API}/experiments/{eid}/landscapes", json={})
    assert r.status_code == 409 and says in r.json()["detail"], r.text
    assert lab_sent.sent == []


def test_best_weights_that_were_never_stored_are_409_pointing_at_last(client, trained):
    r = client.post(f"{API}/experiments/{trained}/landscapes", json={"which": "best"})
    assert r.status_code == 409 and "use which=last" in r.json()["detail"]


@pytest.mark.parametrize(("body", "loc", "says"), [
    ({"points": 6}, ["body", "points"], "6 is even"),
    ({"points": 3}, ["body", "points"], "greater than or equal to 5"),
    ({"points": 63}, ["body", "points"], "less than or equal to 61"),
    ({"dims": 3}, ["body", "dims"], "less than or equal to 2"),
    ({"span": 0}, ["body", "span"], "greater than 0"),
    ({"which": "first"}, ["body", "which"], "'last' or 'best'"),
    ({"val_examples": 0}, ["body", "val_examples"], "greater than or equal to 1"),
    ({"colour": "red"}, ["body", "colour"], "Extra inputs"),
])
def test_bad_fields_are_422_at_the_field(client, trained, body, loc, says):
    r = client.post(f"{API}/experiments/{trained}/landscapes", json=body)
    assert r.status_code == 422, r.text
    problems = r.json()["detail"]
    assert any(p["loc"] == loc and says in p["msg"] for p in problems), problems


def test_viewers_read_landscapes_and_editors_ask_for_them(client, app, trained, session_factory):
    from fastapi.testclient import TestClient

    made = client.post(f"{API}/experiments/{trained}/landscapes", json={"dims": 1}).json()
    with session_factory() as s:
        project_id = s.get(Experiment, trained).project_id
        viewer = token_for(s, make_user(s, "looker", roles={project_id: "viewer"}))
        stranger = token_for(s, make_user(s, "stranger", roles={}))
        s.commit()
    with TestClient(app, headers=bearer(viewer)) as c:
        assert c.get(f"{API}/landscapes/{made['id']}").status_code == 200
        assert c.get(f"{API}/experiments/{trained}/landscapes").status_code == 200
        assert c.post(f"{API}/experiments/{trained}/landscapes", json={}).status_code == 403
    with TestClient(app, headers=bearer(stranger)) as c:
        assert c.get(f"{API}/landscapes/{made['id']}").status_code == 404
        assert c.post(f"{API}/experiments/{trained}/landscapes", json={}).status_code == 404


def test_a_send_the_broker_refused_fails_the_landscape_saying_so(client, trained, lab_sent):
    lab_sent.refuse = True
    made = client.post(f"{API}/experiments/{trained}/landscapes", json={}).json()
    stored = client.get(f"{API}/landscapes/{made['id']}").json()
    assert stored["status"] == "failed" and "the broker did not take it" in stored["error"]
    lab_sent.refuse = False
    assert client.post(f"{API}/experiments/{trained}/landscapes", json={}).status_code == 201


def test_deleting_the_run_deletes_its_landscapes(client, trained):
    made = client.post(f"{API}/experiments/{trained}/landscapes", json={}).json()
    assert client.delete(f"{API}/experiments/{trained}").status_code == 204
    assert client.get(f"{API}/landscapes/{made['id']}").status_code == 404
    assert client.get(f"{API}/landscapes/999999").status_code == 404


def test_the_apis_weights_are_the_ones_the_worker_knows():
    assert tuple(w.value for w in ModelWhich) == WEIGHTS
