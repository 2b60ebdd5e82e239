"""Issue 12's attacks, each tried against a real ``descent up`` (api and worker processes on
SQLite) as a careless or hostile user would, and shown refused, bounded or cancelled with the
error a user gets.  Memory is the api process's own peak RSS (``VmHWM``) before and after."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.descent.running import Up, free_port

pytestmark = pytest.mark.integration

MB = 1024 * 1024


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    folder = tmp_path_factory.mktemp("limits")
    server = Up(folder, free_port())
    try:
        server.wait_ready()
        yield server
    finally:
        server.interrupt()


@pytest.fixture
def api(up):
    with httpx.Client(base_url=up.url + "/api/v1", headers={"Authorization": f"Bearer {up.token}"},
                      timeout=120) as client:
        yield client


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def spec(split_id: int, **over) -> dict:
    return {"name": "attack", "split_id": split_id, "architecture": {"name": "linear"}, "solver": {"name": "sgd"},
            "training": {"epochs": 1, "device": "cpu"}, **over}


@pytest.fixture
def split_id(api) -> int:
    r = api.post("/splits", json={"dataset": "iris", "seed": 0})
    assert r.status_code in (200, 201), r.text
    return r.json()["id"]


def error_at(response: httpx.Response, *loc) -> str:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    hit = [d["msg"] for d in detail if d["loc"][:len(loc)] == list(loc)]
    assert hit, detail
    return hit[0]


@pytest.mark.parametrize("solver, field", [
    ("randomsearch", "n_samples"), ("lbfgs", "max_iter"), ("lbfgs", "max_eval"), ("lbfgs", "history_size"),
    ("bfgs", "max_iter"), ("hessianfree", "cg_max_iter"),
])
def test_uncancellable_loop_knobs_are_refused(api, split_id, solver, field):
    """``randomsearch`` with ``n_samples: 1e9`` was accepted and wedged the worker."""
    before = api.get("/experiments").json()["total"]
    msg = error_at(api.post("/experiments", json=spec(split_id, solver={"name": solver, field: 10**9})),
                   "body", "solver", solver, field)
    assert "less than or equal to" in msg
    assert api.get("/experiments").json()["total"] == before


def test_unbounded_models_are_refused_at_submission_with_the_estimate(api, split_id):
    """A 1.0 B-parameter mlp got 201; newton on a 67,843-parameter MLP got 201 then failed in the
    worker; naturalgradient with dropout failed in the worker."""
    before = api.get("/experiments").json()["total"]
    huge = error_at(api.post("/experiments", json=spec(
        split_id, architecture={"name": "mlp", "depth": 16, "width": 8192}, solver={"name": "adam"})),
        "body", "architecture")
    assert "DESCENT_CPU_MAX_PARAMS" in huge and "GiB" in huge
    newton = error_at(api.post("/experiments", json=spec(
        split_id, architecture={"name": "mlp"}, solver={"name": "newton"})), "body", "solver", "newton")
    assert "2000" in newton
    dropout = api.post("/experiments", json=spec(
        split_id, architecture={"name": "mlp", "dropout": 0.5}, solver={"name": "naturalgradient"}))
    assert dropout.status_code == 422 and "dropout" in dropout.text, dropout.text
    assert api.get("/experiments").json()["total"] == before


def _deflated_npz(members: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in members.items():
            with archive.open(name, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array)
    return buffer.getvalue()


@pytest.mark.parametrize("names", [("x.npy", "y.npy"), ("x", "y")])
def test_a_zip_bomb_is_refused_and_the_api_memory_stays_flat(up, api, names):
    """A 248 KB upload became a 360 MB array and the api's memory rose by 455 MB."""
    zeros = np.zeros((4_500_000, 10))  # 360 MB of float64 zeros deflates to a few hundred KB
    bomb = _deflated_npz(dict(zip(names, (zeros, np.arange(len(zeros)) % 2))))
    del zeros
    assert len(bomb) < 2 * MB
    pid = up.child_pid("api")
    before = peak_rss_mb(pid)
    r = api.post("/datasets", data={"name": "bomb"}, files={"file": ("bomb.npz", bomb)})
    growth = peak_rss_mb(pid) - before
    assert r.status_code in (413, 422), r.text
    assert "allowed" in r.text
    assert growth < 50, f"the api's peak memory grew {growth:.0f} MB"
    assert all(d["name"] != "bomb" for d in api.get("/datasets").json())


def test_a_20_mb_csv_costs_the_api_a_small_multiple_of_its_size(up, api, tmp_path):
    """A 20 MB CSV raised the api's memory by 600 MB (Python lists)."""
    rng = np.random.default_rng(0)
    rows = 200_000
    x = rng.normal(size=(rows, 10))
    path = tmp_path / "big.csv"
    with path.open("w") as fh:
        fh.write(",".join(f"f{i}" for i in range(10)) + ",label\n")
        np.savetxt(fh, np.column_stack([x, np.arange(rows) % 3]), delimiter=",", fmt="%.6f")
    size_mb = path.stat().st_size / MB
    assert size_mb > 15
    pid = up.child_pid("api")
    before = peak_rss_mb(pid)
    with path.open("rb") as fh:
        r = api.post("/datasets", data={"name": "big", "task": "classification", "target": "label"},
                     files={"file": ("big.csv", fh)})
    growth = peak_rss_mb(pid) - before
    assert r.status_code == 201, r.text
    assert r.json()["n_samples"] == rows
    assert growth < 4 * size_mb, f"{size_mb:.0f} MB of CSV grew the api's peak memory by {growth:.0f} MB"
    assert api.delete(f"/datasets/{r.json()['id']}").status_code == 204


def test_huge_json_is_refused_before_it_is_read_whole(api, split_id):
    """A 16 MB spec with 8 M milestones was stored, and every list then returned 16 MB."""
    milestones = ",".join(str(i) for i in range(1, 2_000_000))
    raw = (f'{{"name":"big","split_id":{split_id},"architecture":{{"name":"linear"}},"solver":{{"name":"sgd"}},'
           f'"scheduler":{{"name":"multisteplr","milestones":[{milestones}]}}}}')
    assert len(raw) > 10 * MB
    r = api.post("/experiments", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert "DESCENT_MAX_REQUEST_BYTES" in r.text
    msg = error_at(api.post("/experiments", json=spec(
        split_id, scheduler={"name": "multisteplr", "milestones": list(range(1, 1002))})),
        "body", "scheduler", "multisteplr", "milestones")
    assert "1000" in msg


def test_metric_spam_is_bounded(api, split_id):
    """100 k points and unbounded distinct names per request; 1,000 names took 19 s of api time.
    (A run on the gpu queue, which has no worker here, stays queued and takes points.)"""
    r = api.post("/experiments", json=spec(split_id, training={"epochs": 1, "device": "cuda"}))
    assert r.status_code == 201, r.text
    experiment = r.json()["id"]
    many_names = {"points": [{"name": f"m{i}", "step": 0, "value": 1.0} for i in range(1000)]}
    r = api.post(f"/experiments/{experiment}/metrics", json=many_names)
    assert r.status_code == 422 and "DESCENT_MAX_METRIC_NAMES" in r.text, r.text
    too_many = {"points": [{"name": "m", "step": i, "value": 1.0} for i in range(100_001)]}
    r = api.post(f"/experiments/{experiment}/metrics", json=too_many)
    assert r.status_code in (413, 422), r.text
    assert api.get(f"/experiments/{experiment}/metrics").json()["series"] == {}
    api.post(f"/experiments/{experiment}/cancel")


def test_uploads_and_splits_can_be_freed_and_a_split_is_not_copied(api, tmp_path):
    """Datasets and splits had no DELETE; six bad submissions left six identical splits."""
    path = tmp_path / "small.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(60)))
    with path.open("rb") as fh:
        dataset = api.post("/datasets", data={"name": "small", "task": "classification", "target": "label"},
                           files={"file": ("small.csv", fh)}).json()["id"]
    block = {"dataset": dataset, "strategy": "random", "seed": 3}
    ids = set()
    for _ in range(6):  # a spec's split: block, sent with a spec the api refuses
        r = api.post("/splits", json=block)
        ids.add(r.json()["id"])
        refused = api.post("/experiments", json=spec(r.json()["id"], solver={"name": "sgd", "base_lr": -1}))
        assert refused.status_code == 422
    assert len(ids) == 1
    (split,) = ids
    assert api.delete(f"/datasets/{dataset}").status_code == 409  # the split uses it
    assert api.delete(f"/splits/{split}").status_code == 204
    assert api.delete(f"/datasets/{dataset}").status_code == 204
    assert api.get(f"/datasets/{dataset}").status_code == 404


def test_trust_boundary(up, api, split_id):
    """/health told anyone exception text; SQLite reused a deleted experiment's id."""
    anonymous = httpx.get(up.url + "/api/v1/health", timeout=10)
    assert anonymous.status_code == 200 and set(anonymous.json()) == {"status"}
    first = api.post("/experiments", json=spec(split_id, training={"epochs": 1, "device": "cuda"})).json()["id"]
    api.post(f"/experiments/{first}/cancel")
    assert api.delete(f"/experiments/{first}").status_code == 204
    second = api.post("/experiments", json=spec(split_id, training={"epochs": 1, "device": "cuda"})).json()["id"]
    assert second > first
    api.post(f"/experiments/{second}/cancel")


def wait_for(api, experiment_id: int, statuses: tuple[str, ...], timeout: float = 120) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        e = api.get(f"/experiments/{experiment_id}").json()
        if e["status"] in statuses:
            return e
        time.sleep(0.2)
    raise AssertionError(f"experiment {experiment_id} still {e['status']} after {timeout} s")


def test_a_cancel_stops_a_run_inside_one_long_step_and_the_next_run_trains(api):
    """Cancel answered 200, yet 45 s later the run was still at step 0 and the next one waited.
    One full-batch random-search step with 1,000 candidates takes several seconds here.  (A cancel
    while the run sets up, loading data and building the model, takes effect at its first step.)"""
    import time

    digits = api.post("/splits", json={"dataset": "digits", "seed": 0}).json()["id"]
    long = api.post("/experiments", json=spec(
        digits, architecture={"name": "mlp", "depth": 2, "width": 64},
        solver={"name": "randomsearch", "n_samples": 1000},
        training={"epochs": 1000, "batch_size": None, "device": "cpu"})).json()["id"]
    deadline = time.monotonic() + 300
    while api.get(f"/experiments/{long}").json()["step"] < 1:  # the first step done: inside the second now
        assert time.monotonic() < deadline
        time.sleep(0.2)
    asked = time.monotonic()
    assert api.post(f"/experiments/{long}/cancel").status_code == 200
    ended = wait_for(api, long, ("cancelled", "failed", "succeeded"), timeout=30)
    took = time.monotonic() - asked
    assert ended["status"] == "cancelled", ended
    assert took < 5, f"the cancel took {took:.1f} s: {ended}"
    assert ended["step"] == 1  # stopped inside its second step, which takes several seconds
    nxt = api.post("/experiments", json=spec(digits)).json()["id"]
    assert wait_for(api, nxt, ("succeeded", "failed"))["status"] == "succeeded"


def test_a_run_past_its_wall_clock_limit_fails_saying_so(api):
    digits = api.post("/splits", json={"dataset": "digits", "seed": 0}).json()["id"]
    run = api.post("/experiments", json=spec(
        digits, architecture={"name": "mlp", "depth": 2, "width": 64},
        training={"epochs": 100_000, "batch_size": 8, "device": "cpu", "max_minutes": 0.1})).json()["id"]
    ended = wait_for(api, run, ("cancelled", "failed", "succeeded"), timeout=60)
    assert ended["status"] == "failed" and "training.max_minutes" in ended["error"], ended
    assert ended["step"] > 0, ended["error"]
    points = api.get(f"/experiments/{run}/metrics", params={"names": "train/loss"}).json()["series"]
    steps = points["train/loss"]["steps"]
    assert steps == sorted(set(steps))  # every step recorded once


def test_a_worker_that_dies_is_started_again_and_trains_the_next_run(up, api, split_id):
    """A hard stop may end the worker process: ``descent up`` starts a new one instead of going
    down, and the next run trains."""
    import os
    import signal
    import time

    before = set(up.child_pids("worker"))  # the training worker and the lab worker
    os.killpg(up.child_pid("worker"), signal.SIGKILL)
    deadline = time.monotonic() + 30
    restarted = False
    while time.monotonic() < deadline and not restarted:
        time.sleep(0.5)
        # the other worker was never killed: only a pid that was not there before is the new one
        restarted = bool(set(up.child_pids("worker")) - before) and "starting a new one" in up.output()
    assert restarted, up.output()
    run = api.post("/experiments", json=spec(split_id)).json()["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and api.get(f"/experiments/{run}").json()["status"] != "succeeded":
        time.sleep(1)
    assert api.get(f"/experiments/{run}").json()["status"] == "succeeded", up.output()
    assert up.process.poll() is None
