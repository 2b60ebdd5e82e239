"""POST /experiments?dry_run=true, PATCH /experiments/{id} and the "did you mean" hints of a
422, against real databases."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from store.models import Experiment
from store.models.idempotency import IdempotencyKey
from store.models.projects import AuditEvent
from tests.api.test_experiments import _set_status, body

API = "/api/v1"


def _rows(session_factory) -> tuple[int, int, int]:
    """How many experiments, audit events and idempotency records are stored."""
    with session_factory() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Experiment, AuditEvent, IdempotencyKey))


def test_dry_run_answers_the_resolved_spec_and_queue_and_writes_nothing(client, iris_split, enqueued,
                                                                       session_factory):
    before = _rows(session_factory)
    r = client.post(f"{API}/experiments", params={"dry_run": "true"}, json=body(iris_split["id"]),
                    headers={"Idempotency-Key": "dry-1"})
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["queue"] == "cpu" and preview["project_id"] == iris_split["project_id"]
    assert preview["spec"]["training"]["loss"] == "cross_entropy"  # resolved from the data
    assert _rows(session_factory) == before and enqueued.sent == []
    # the real submission stores the spec the dry run showed
    created = client.post(f"{API}/experiments", json=body(iris_split["id"]), headers={"Idempotency-Key": "dry-1"})
    assert created.status_code == 201 and created.json()["spec"] == preview["spec"]


@pytest.mark.parametrize("override, loc", [
    ({"solver": {"name": "adma"}}, ["body", "solver"]),  # the body
    ({"split_id": 999_999}, ["body", "split_id"]),  # the split
    ({"training": {"loss": "mse"}}, ["body", "training", "loss"]),  # what needs the data
    ({"training": {"max_minutes": 10**6}}, ["body", "training", "max_minutes"]),  # the instance's limits
    ({"architecture": {"name": "mlp", "width": 4096, "depth": 64}}, ["body", "architecture"]),  # the budget
])
def test_dry_run_refuses_what_a_submission_refuses_the_same_way(client, iris_split, override, loc):
    spec = body(iris_split["id"], **override)
    dry = client.post(f"{API}/experiments", params={"dry_run": "true"}, json=spec)
    real = client.post(f"{API}/experiments", json=spec)
    assert dry.status_code == real.status_code == 422, (dry.text, real.text)
    assert dry.json() == real.json()
    assert any(d["loc"][:len(loc)] == loc for d in dry.json()["detail"]), dry.text


@pytest.mark.parametrize("change", [
    {"name": "renamed"},
    {"tags": ["a", "b"]},
    {"description": "what this run tries"},
    {"name": "all", "tags": [], "description": ""},
])
def test_patch_changes_the_row_and_the_stored_spec_alike(client, iris_split, session_factory, change):
    e = client.post(f"{API}/experiments", json=body(iris_split["id"], tags=["old"], description="before")).json()
    r = client.patch(f"{API}/experiments/{e['id']}", json=change)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got == client.get(f"{API}/experiments/{e['id']}").json()
    want = {"name": e["name"], "tags": ["old"], "description": "before", **change}
    assert (got["name"], got["tags"]) == (want["name"], want["tags"])
    assert {k: got["spec"][k] for k in want} == want
    assert got["spec"]["solver"] == e["spec"]["solver"] and got["status"] == "queued"
    with session_factory() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "experiment.edit")).one()
    assert event.target == f"experiment {e['id']}" and event.detail == change


def test_patch_works_on_a_finished_run_and_an_empty_body_changes_nothing(client, iris_split, session_factory):
    e = client.post(f"{API}/experiments", json=body(iris_split["id"])).json()
    _set_status(session_factory, e["id"], "succeeded")
    assert client.patch(f"{API}/experiments/{e['id']}", json={"tags": ["done"]}).json()["tags"] == ["done"]
    assert client.patch(f"{API}/experiments/{e['id']}", json={}).json()["tags"] == ["done"]


@pytest.mark.parametrize("change, loc", [
    ({"name": ""}, ["body", "name"]),
    ({"name": "x" * 201}, ["body", "name"]),
    ({"name": None}, ["body", "name"]),
    ({"name": "nul\x00"}, ["body", "name"]),
    ({"tags": ["x" * 65]}, ["body", "tags", 0]),
    ({"tags": [f"t{i}" for i in range(33)]}, ["body", "tags"]),
    ({"tags": "one"}, ["body", "tags"]),
    ({"description": "x" * 10_001}, ["body", "description"]),
    ({"nmae": "x"}, ["body", "nmae"]),
    ({"solver": {"name": "adam"}}, ["body", "solver"]),  # only name, tags and description change
])
def test_patch_bad_values_are_422_naming_the_field(client, iris_split, change, loc):
    e = client.post(f"{API}/experiments", json=body(iris_split["id"])).json()
    r = client.patch(f"{API}/experiments/{e['id']}", json=change)
    assert r.status_code == 422, r.text
    assert loc in [d["loc"] for d in r.json()["detail"]]
    assert client.get(f"{API}/experiments/{e['id']}").json() == e


def test_patch_of_a_missing_experiment_is_404(client):
    assert client.patch(f"{API}/experiments/999999", json={"name": "x"}).status_code == 404


# (the body's change, where the problem is, the hint the message ends with)
HINTS = [
    ({"solver": {"name": "adma"}}, ["body", "solver"], "did you mean 'adam'?"),
    ({"solver": {"name": "sdg"}}, ["body", "solver"], "did you mean 'sgd'?"),
    ({"scheduler": {"name": "cosine"}}, ["body", "scheduler"], "did you mean 'cosineannealinglr'?"),
    ({"architecture": {"name": "mpl"}}, ["body", "architecture"], "did you mean 'mlp'?"),
    ({"solver": {"name": "adam", "lr": 0.1}}, ["body", "solver", "adam", "lr"], "did you mean 'base_lr'?"),
    ({"solver": {"name": "sgd", "momentun": 0.9}}, ["body", "solver", "sgd", "momentun"], "did you mean 'momentum'?"),
    ({"solver": {"name": "lbfgs", "wd": 0.1}}, ["body", "solver", "lbfgs", "wd"], "did you mean 'weight_decay'?"),
    ({"training": {"epoch": 3}}, ["body", "training", "epoch"], "did you mean 'epochs'?"),
    ({"training": {"batchsize": 8}}, ["body", "training", "batchsize"], "did you mean 'batch_size'?"),
    ({"training": {"precision": "bf61"}}, ["body", "training", "precision"], "did you mean 'bf16'?"),
    ({"architecture": {"name": "mlp", "activation": "rleu"}}, ["body", "architecture", "mlp", "activation"],
     "did you mean 'relu'?"),
    ({"optimizer": {"name": "adam"}}, ["body", "optimizer"], "did you mean 'solver'?"),
    ({"model": {"name": "mlp"}}, ["body", "model"], "did you mean 'architecture'?"),
    ({"lr": 0.1}, ["body", "lr"], "did you mean solver.base_lr?"),
    ({"epochs": 3}, ["body", "epochs"], "did you mean training.epochs?"),
]


@pytest.mark.parametrize("override, loc, suggestion", HINTS, ids=[str(h[0]) for h in HINTS])
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_422_says_which_name_was_meant(client, iris_split, override, loc, suggestion, dry_run):
    params = {"dry_run": "true"} if dry_run else {}
    r = client.post(f"{API}/experiments", params=params, json=body(iris_split["id"], **override))
    assert r.status_code == 422, r.text
    messages = {tuple(d["loc"]): d["msg"] for d in r.json()["detail"]}
    assert messages[tuple(loc)].endswith(suggestion), messages


def test_a_clone_override_gets_the_hint_too(client, iris_split):
    e = client.post(f"{API}/experiments", json=body(iris_split["id"])).json()
    r = client.post(f"{API}/experiments/{e['id']}/clone", json={"solver": {"name": "adma"}})
    assert r.status_code == 422
    assert r.json()["detail"][0]["msg"].endswith("did you mean 'adam'?")


def test_a_patch_field_typo_gets_the_hint(client, iris_split):
    e = client.post(f"{API}/experiments", json=body(iris_split["id"])).json()
    r = client.patch(f"{API}/experiments/{e['id']}", json={"tag": ["x"]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["msg"].endswith("did you mean 'tags'?")


def test_an_unknown_builtin_dataset_in_a_split_gets_the_hint(client):
    r = client.post(f"{API}/splits", json={"dataset": "irsi"})
    assert r.status_code == 422
    assert "did you mean 'iris'?" in r.json()["detail"][0]["msg"]
