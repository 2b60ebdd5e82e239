"""POST/GET/cancel/clone/delete /experiments against real databases."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from store.models import Experiment

API = "/api/v1"


def body(split, **over):
    b = {"name": "run", "split_id": split, "architecture": {"name": "mlp"}, "solver": {"name": "sgd"}}
    b.update(over)
    return b


def test_minimal_body_gets_every_default_and_is_enqueued(client, iris_split, enqueued):
    r = client.post(f"{API}/experiments", json=body(iris_split["id"]))
    assert r.status_code == 201, r.text
    e = r.json()
    assert e["status"] == "queued" and e["queue"] == "cpu" and e["attempt"] == 0
    assert e["spec"]["training"]["loss"] == "cross_entropy"  # from the dataset's task
    assert e["spec"]["solver"]["base_lr"] > 0 and e["spec"]["scheduler"]["name"] == "constant"
    assert enqueued.sent == [(e["id"], "cpu")]
    assert client.get(f"{API}/experiments/{e['id']}").json() == e


def test_regression_split_defaults_to_mse(client):
    split = client.post(f"{API}/splits", json={"dataset": "diabetes"}).json()
    e = client.post(f"{API}/experiments", json=body(split["id"])).json()
    assert e["spec"]["training"]["loss"] == "mse"


@pytest.mark.parametrize("override, loc", [
    ({"solver": {"name": "sgd", "base_lr": -0.1}}, ["body", "solver", "sgd", "base_lr"]),
    ({"solver": {"name": "no_such_solver"}}, ["body", "solver"]),
    ({"solver": {"name": "sgd", "unknown_field": 1}}, ["body", "solver", "sgd", "unknown_field"]),
    ({"training": {"epochs": 0}}, ["body", "training", "epochs"]),
    ({"architecture": {"name": "cnn2d"}}, ["body", "architecture"]),  # iris rows are not images
    # the hyperparameter at fault, at the path pydantic gives its bad values
    ({"architecture": {"name": "cnn1d", "kernel_size": 5}}, ["body", "architecture", "cnn1d", "kernel_size"]),
    ({"architecture": {"name": "transformer", "d_model": 32, "heads": 5}},
     ["body", "architecture", "transformer", "heads"]),
    ({"training": {"loss": "mse"}}, ["body", "training", "loss"]),  # regression loss on classes
    ({"split_id": 999_999}, ["body", "split_id"]),
    # iris train part: 105 rows, 64 a batch -> 2 steps an epoch, 20 epochs -> 40 steps
    ({"scheduler": {"name": "onecyclelr", "total_steps": 39}}, ["body", "scheduler", "total_steps"]),
    ({"scheduler": {"name": "onecyclelr", "total_steps": 34, "warmup_steps": 5}}, ["body", "scheduler", "total_steps"]),
    ({"scheduler": {"name": "onecyclelr", "total_steps": 10}, "training": {"epochs": 6}},
     ["body", "scheduler", "total_steps"]),
    ({"scheduler": {"name": "cycliclr", "base_lr": 0.1, "max_lr": 0.01}}, ["body", "scheduler", "max_lr"]),
    ({"solver": {"name": "sgd", "base_lr": 0.5}, "scheduler": {"name": "cycliclr", "max_lr": 0.1}},
     ["body", "scheduler", "max_lr"]),  # base_lr derives from the solver's
])
def test_invalid_bodies_are_422_naming_the_path(client, iris_split, enqueued, override, loc):
    r = client.post(f"{API}/experiments", json=body(iris_split["id"], **override))
    assert r.status_code == 422, r.text
    assert loc in [d["loc"] for d in r.json()["detail"]]
    assert enqueued.sent == []
    assert client.get(f"{API}/experiments").json()["total"] == 0


@pytest.mark.parametrize("scheduler, want", [
    ({"name": "onecyclelr", "total_steps": 40}, {"total_steps": 40}),  # exactly the run's 40 steps
    ({"name": "onecyclelr", "total_steps": 35, "warmup_steps": 5}, {"total_steps": 35}),
    ({"name": "onecyclelr", "warmup_steps": 5}, {"total_steps": 35}),  # derived: the cycle starts after warm-up
    ({"name": "onecyclelr"}, {"total_steps": 40}),
    ({"name": "cycliclr", "base_lr": 0.01, "max_lr": 0.01}, {"max_lr": 0.01}),
])
def test_scheduler_fields_that_fit_the_run_are_accepted(client, iris_split, scheduler, want):
    r = client.post(f"{API}/experiments", json=body(iris_split["id"], scheduler=scheduler))
    assert r.status_code == 201, r.text
    assert want.items() <= r.json()["spec"]["scheduler"].items()


def test_scheduler_check_names_the_numbers(client, iris_split):
    r = client.post(f"{API}/experiments", json=body(iris_split["id"], scheduler={"name": "onecyclelr", "total_steps": 3}))
    assert r.status_code == 422
    (d,) = r.json()["detail"]
    assert d["loc"] == ["body", "scheduler", "total_steps"] and d["type"] == "value_error"
    assert "fewer than the 40 steps" in d["msg"] and "20 epochs x 2 steps per epoch - 0 warm-up steps" in d["msg"]


def test_device_auto_routes_to_gpu_only_while_a_gpu_worker_is_alive(client, iris_split, session_factory):
    from store.db import session_scope
    from store.repositories import workers

    assert client.post(f"{API}/experiments", json=body(iris_split["id"])).json()["queue"] == "cpu"
    with session_scope(session_factory) as s:
        workers.beat(s, "gpu-box:1", "gpu-box", ["gpu"], 1)
    assert client.post(f"{API}/experiments", json=body(iris_split["id"])).json()["queue"] == "gpu"
    cpu_body = body(iris_split["id"], training={"device": "cpu"})
    assert client.post(f"{API}/experiments", json=cpu_body).json()["queue"] == "cpu"


def _set_status(session_factory, experiment_id, status):
    with session_factory() as s:
        s.execute(update(Experiment).where(Experiment.id == experiment_id).values(status=status))
        s.commit()


@pytest.mark.parametrize("status, code, after", [
    ("queued", 200, "cancelled"), ("running", 200, "running"), ("succeeded", 409, "succeeded"),
    ("failed", 409, "failed"), ("cancelled", 409, "cancelled"),
])
def test_cancel(client, iris_split, session_factory, status, code, after):
    eid = client.post(f"{API}/experiments", json=body(iris_split["id"])).json()["id"]
    _set_status(session_factory, eid, status)
    r = client.post(f"{API}/experiments/{eid}/cancel")
    assert r.status_code == code
    got = client.get(f"{API}/experiments/{eid}").json()
    assert got["status"] == after
    assert got["cancel_requested"] is (code == 200)


@pytest.mark.parametrize("status, code", [("queued", 409), ("running", 409), ("succeeded", 204), ("cancelled", 204)])
def test_delete(client, iris_split, session_factory, status, code):
    eid = client.post(f"{API}/experiments", json=body(iris_split["id"])).json()["id"]
    _set_status(session_factory, eid, status)
    assert client.delete(f"{API}/experiments/{eid}").status_code == code
    assert client.get(f"{API}/experiments/{eid}").status_code == (404 if code == 204 else 200)


@pytest.mark.parametrize("missing", [4242, 2**31, 2**40])  # past the id column's range too: no row, no 500
def test_missing_ids_are_404(client, missing):
    for method, path in [("get", "/experiments/{}"), ("post", "/experiments/{}/cancel"),
                         ("post", "/experiments/{}/clone"), ("delete", "/experiments/{}"),
                         ("get", "/experiments/{}/metrics"), ("get", "/experiments/{}/checkpoint")]:
        path = path.format(missing)
        assert getattr(client, method)(API + path).status_code == 404, path


def test_clone_merges_overrides_and_rederives_scheduler_length(client, iris_split, enqueued):
    scheduled = body(iris_split["id"], scheduler={"name": "cosineannealinglr"}, training={"epochs": 10})
    source = client.post(f"{API}/experiments", json=scheduled).json()
    assert source["spec"]["scheduler"]["T_max"] == 10  # an epoch-interval schedule spans the 10 epochs
    r = client.post(f"{API}/experiments/{source['id']}/clone",
                    json={"solver": {"base_lr": 0.5}, "training": {"epochs": 20}})
    assert r.status_code == 201, r.text
    clone = r.json()
    assert clone["id"] != source["id"] and clone["name"] == "run (copy)"
    assert clone["spec"]["solver"] == {**source["spec"]["solver"], "base_lr": 0.5}
    assert clone["spec"]["scheduler"]["T_max"] == 20  # re-derived from the clone's 20 epochs
    assert [i for i, _ in enqueued.sent] == [source["id"], clone["id"]]
    other = client.post(f"{API}/experiments/{source['id']}/clone", json={"solver": {"name": "adam"}}).json()
    assert other["spec"]["solver"]["name"] == "adam" and "momentum" not in other["spec"]["solver"]
    bad = client.post(f"{API}/experiments/{source['id']}/clone", json={"solver": {"base_lr": -1}})
    assert bad.status_code == 422


def test_list_filters_and_paginates(client, iris_split):
    for i in range(3):
        client.post(f"{API}/experiments", json=body(iris_split["id"], name=f"r{i}", tags=["even"] if i % 2 == 0 else []))
    client.post(f"{API}/experiments", json=body(iris_split["id"], solver={"name": "adam"}))
    page = client.get(f"{API}/experiments", params={"limit": 2}).json()
    assert page["total"] == 4 and len(page["items"]) == 2
    assert [e["name"] for e in client.get(f"{API}/experiments", params={"tag": "even"}).json()["items"]] == ["r2", "r0"]
    assert client.get(f"{API}/experiments", params={"solver": "adam"}).json()["total"] == 1
    assert client.get(f"{API}/experiments", params={"status": "running"}).json()["total"] == 0
    assert client.get(f"{API}/experiments", params={"status": "bogus"}).status_code == 422


def test_checkpoint_is_served_as_bytes(client, iris_split, settings):
    eid = client.post(f"{API}/experiments", json=body(iris_split["id"])).json()["id"]
    assert client.get(f"{API}/experiments/{eid}/checkpoint").status_code == 404
    path = settings.checkpoint_path(eid, "final")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x80weights")
    r = client.get(f"{API}/experiments/{eid}/checkpoint")
    assert r.status_code == 200 and r.content == b"\x80weights"


@pytest.mark.parametrize(("params", "stored", "filename"), [
    ({}, "model.pt2", "experiment-{}.pt2"), ({"format": "pt2"}, "model.pt2", "experiment-{}.pt2"),
    ({"format": "onnx"}, "model.onnx", "experiment-{}.onnx"),
    ({"format": "state_dict"}, "final.pt", "experiment-{}.pt"),
    ({"which": "best"}, "model-best.pt2", "experiment-{}-best.pt2"),
    ({"format": "onnx", "which": "best"}, "model-best.onnx", "experiment-{}-best.onnx"),
    ({"format": "state_dict", "which": "best"}, "best.pt", "experiment-{}-best.pt"),
    ({"format": "state_dict", "which": "last"}, "final.pt", "experiment-{}.pt"),
])
def test_the_model_is_served_in_the_format_and_weights_asked_for(client, iris_split, settings, params, stored,
                                                                  filename):
    eid = client.post(f"{API}/experiments", json=body(iris_split["id"])).json()["id"]
    missing = client.get(f"{API}/experiments/{eid}/model", params=params)
    assert missing.status_code == 404 and "a run stores one when it succeeds" in missing.json()["detail"]
    folder = settings.checkpoint_path(eid).parent
    folder.mkdir(parents=True)
    for other in ("model.pt2", "model.onnx", "final.pt", "model-best.pt2", "model-best.onnx", "best.pt"):
        (folder / other).write_bytes(b"\x80" + other.encode())  # each file its own bytes
    r = client.get(f"{API}/experiments/{eid}/model", params=params)
    assert r.status_code == 200 and r.content == b"\x80" + stored.encode()
    assert filename.format(eid) in r.headers["content-disposition"]
    for name, value in (("format", "onnx2"), ("which", "first")):
        bad = client.get(f"{API}/experiments/{eid}/model", params={name: value})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", name]


def _post(client, eid, name, values):
    points = [{"name": name, "step": s, "value": v, "wall_time": 1000.0 + s} for s, v in enumerate(values)]
    assert client.post(f"{API}/experiments/{eid}/metrics", json={"points": points}).status_code == 200


def _oracle(values, higher: bool) -> tuple[float, int]:
    """numpy's extreme of what was posted (None as NaN) and its first step."""
    v = np.array([np.nan if x is None else x for x in values])
    i = int(np.nanargmax(v) if higher else np.nanargmin(v))
    return float(v[i]), i


def test_list_carries_each_runs_best_value_of_the_named_metric(client, iris_split):
    rng = np.random.default_rng(7)
    posted: dict[int, dict[str, list]] = {}
    for i in range(4):
        eid = client.post(f"{API}/experiments", json=body(iris_split["id"], name=f"r{i}", tags=["t"])).json()["id"]
        posted[eid] = {}
        for name in ("val/loss", "val/accuracy")[: 2 - i % 2]:  # odd runs record no accuracy
            values = [None if rng.random() < 0.1 else float(x) for x in rng.normal(size=int(rng.integers(5, 60)))]
            posted[eid][name] = values
            _post(client, eid, name, values)
    bare = client.post(f"{API}/experiments", json=body(iris_split["id"], name="no metrics", tags=["t"])).json()["id"]

    for metric, higher in (("val/accuracy", True), ("val/loss", False)):
        items = client.get(f"{API}/experiments", params={"best": metric, "limit": 500}).json()["items"]
        best = {e["id"]: e["best"] for e in items}
        assert best[bare] is None
        for eid, metrics in posted.items():
            if metric not in metrics:
                assert best[eid] is None
                continue
            value, step = _oracle(metrics[metric], higher)
            assert best[eid] == {"name": metric, "value": value, "step": step, "higher_is_better": higher}

    # first preferred: accuracy where a run has it, its loss otherwise; the tag filter too
    page = client.get(f"{API}/experiments", params={"best": "val/accuracy,val/loss", "tag": "t", "limit": 3}).json()
    assert page["total"] == 5 and len(page["items"]) == 3
    for e in page["items"]:
        if e["id"] == bare:
            assert e["best"] is None
            continue
        name = "val/accuracy" if "val/accuracy" in posted[e["id"]] else "val/loss"
        assert (e["best"]["name"], e["best"]["value"]) == (name, _oracle(posted[e["id"]][name], name.endswith("y"))[0])
    assert all(e["best"] is None for e in client.get(f"{API}/experiments").json()["items"])


def test_list_with_best_reads_page_and_best_in_one_query(client, iris_split, connection):
    from sqlalchemy import event

    eid = client.post(f"{API}/experiments", json=body(iris_split["id"])).json()["id"]
    _post(client, eid, "val/loss", [0.5, 0.25])
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
    event.listen(connection, "before_cursor_execute", listener)
    try:
        items = client.get(f"{API}/experiments", params={"best": "val/accuracy,val/loss"}).json()["items"]
    finally:
        event.remove(connection, "before_cursor_execute", listener)
    assert items[0]["best"]["value"] == 0.25
    assert len([s for s in statements if "metric_summaries" in s]) == 1
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "FROM experiments" in s]
    assert len(reads) == 2  # the page and its count (besides the caller's token and roles)


@pytest.mark.parametrize("best", ["", " , ", ",".join(f"m{i}" for i in range(11)), "x" * 129, "val/loss\x00"])
def test_bad_best_is_a_422_naming_it(client, best):
    r = client.get(f"{API}/experiments", params={"best": best})
    assert r.status_code == 422, r.text
    assert ["query", "best"] in [d["loc"] for d in r.json()["detail"]]


def test_spec_reads_back_exactly_as_stored_even_when_todays_rules_reject_it(client, iris_split, session_factory):
    """``spec`` is typed as ``ExperimentSpec`` in the schema; a spec stored by an older version
    (a field since removed, a bound since tightened) is still served as stored, never a 500."""
    e = client.post(f"{API}/experiments", json=body(iris_split["id"])).json()
    with session_factory() as s:
        stored = s.get(Experiment, e["id"]).spec
    assert e["spec"] == stored
    old = {**stored, "retired_field": 1, "training": {**stored["training"], "epochs": 10**9}}
    with session_factory() as s:
        s.execute(update(Experiment).where(Experiment.id == e["id"]).values(spec=old))
        s.commit()
    client = TestClient(client.app, headers=client.headers)  # on purpose, what it serves is not an ExperimentSpec
    for r in (client.get(f"{API}/experiments/{e['id']}"), client.get(f"{API}/experiments")):
        assert r.status_code == 200, r.text
    assert client.get(f"{API}/experiments/{e['id']}").json()["spec"] == old
    assert client.get(f"{API}/experiments").json()["items"][0]["spec"] == old


def test_a_deleted_experiments_id_is_never_given_to_a_new_one(client, iris_split, session_factory):
    """Otherwise the new run could meet the old one's checkpoint folder (SQLite reused the
    largest id; AUTOINCREMENT there, sequences on PostgreSQL)."""
    first = client.post(f"{API}/experiments", json=body(iris_split["id"])).json()["id"]
    _set_status(session_factory, first, "succeeded")
    assert client.delete(f"{API}/experiments/{first}").status_code == 204
    second = client.post(f"{API}/experiments", json=body(iris_split["id"])).json()["id"]
    assert second > first


def test_a_list_hyperparameter_is_bounded_in_length(client, iris_split):
    """Issue 12: a spec with 8 M MultiStepLR milestones was stored; a list holds at most 1000 items."""
    from core.spec.from_catalog import MAX_LIST_ITEMS

    def scheduler(n):
        return {"scheduler": {"name": "multisteplr", "milestones": list(range(1, n + 1))},
                "training": {"epochs": 5}}

    r = client.post(f"{API}/experiments", json=body(iris_split["id"], **scheduler(MAX_LIST_ITEMS + 1)))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][:4] == ["body", "scheduler", "multisteplr", "milestones"]
    assert client.post(f"{API}/experiments", json=body(iris_split["id"], **scheduler(3))).status_code == 201


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_a_submission_no_worker_can_take_is_accepted_saying_so(client, iris_split, session_factory, device):
    """``device: cuda`` with no GPU worker ever seen used to say only "submitted", then wait
    silently; now the run (and a dry run) carries a warning naming the command that starts one,
    until a worker serving the queue is alive."""
    from store.repositories import experiments as experiments_repo
    from store.repositories import workers

    queue = "gpu" if device == "cuda" else "cpu"
    spec = body(iris_split["id"], training={"epochs": 1, "device": device})
    dry = client.post(f"{API}/experiments", params={"dry_run": "true"}, json=spec).json()
    made = client.post(f"{API}/experiments", json=spec)
    assert made.status_code == 201, made.text
    warning = made.json()["warning"]
    assert warning.startswith(f"no worker serving the '{queue}' queue has been seen: the run waits until one starts")
    assert f"descent worker --queue {queue}" in warning and dry["warning"] == warning
    assert client.get(f"{API}/experiments/{made.json()['id']}").json()["warning"] == warning

    with session_factory() as session, session.begin():
        workers.beat(session, f"w-{queue}:1", "w", [queue], 1 if queue == "gpu" else 0)
    assert client.post(f"{API}/experiments", json=spec).json()["warning"] is None
    with session_factory() as session, session.begin():  # a worker takes it: the warning no longer holds
        experiments_repo.claim(session, made.json()["id"], "w", device, stale_after_s=10)
    assert client.get(f"{API}/experiments/{made.json()['id']}").json()["warning"] is None
