"""Issue 12's validation budgets at ``POST /experiments``: every loop knob has a service maximum,
batch_size and the wall-clock limit are bounded; a refused spec is a 422 naming the field and
creates nothing.  The constructors keep torch's bounds: the limit is the service's, not the
optimizer's (the optimizer is built with the refused value as the oracle)."""

from __future__ import annotations

import re

import pytest
import torch

from optim import catalog
from optim.factory import build_optimizer

API = "/api/v1"

# every catalog hyperparameter with a service maximum, and the field it is written as in a spec
LOOP_KNOBS = [(e.name, h.name, h.service_maximum) for e in catalog.SOLVERS.values() for h in e.hyperparameters
              if h.service_maximum is not None]


def body(split, **over):
    b = {"name": "run", "split_id": split, "architecture": {"name": "linear"}, "solver": {"name": "sgd"}}
    b.update(over)
    return b


def test_the_loop_knobs_the_issue_names_all_have_a_service_maximum():
    named = {("randomsearch", "n_samples"), ("lbfgs", "max_iter"), ("lbfgs", "max_eval"), ("lbfgs", "history_size"),
             ("bfgs", "max_iter"), ("bfgs", "max_eval"), ("hessianfree", "cg_max_iter")}
    assert named <= {(s, h) for s, h, _ in LOOP_KNOBS}


@pytest.mark.parametrize("solver, field, maximum", LOOP_KNOBS, ids=[f"{s}-{h}" for s, h, _ in LOOP_KNOBS])
def test_a_loop_knob_above_its_service_maximum_is_422(client, iris_split, solver, field, maximum):
    limit = int(maximum)
    over = client.post(f"{API}/experiments", json=body(iris_split["id"], solver={"name": solver, field: limit + 1}))
    assert over.status_code == 422, over.text
    detail = over.json()["detail"][0]
    assert detail["loc"] == ["body", "solver", solver, field] and str(limit) in detail["msg"]
    at = client.post(f"{API}/experiments", json=body(iris_split["id"], solver={"name": solver, field: limit}))
    assert at.status_code == 201, at.text
    assert len(client.get(f"{API}/experiments").json()["items"]) == 1  # the refused one created nothing
    # the optimizer itself takes the larger value: the bound is the service's
    model = torch.nn.Linear(2, 1)
    build_optimizer(list(model.parameters()), solver, {field: limit + 1},
                    model=model if catalog.solver(solver).needs_model else None)


def test_the_form_schema_shows_the_service_maximum(client):
    entry = next(s for s in client.get(f"{API}/solvers").json() if s["name"] == "randomsearch")
    assert entry["hyperparameters"]["properties"]["n_samples"]["maximum"] == 1000


@pytest.mark.parametrize("training, loc, words", [
    ({"batch_size": 2**20 + 1}, ["body", "training", "batch_size"], "1048576"),
    ({"max_minutes": 0}, ["body", "training", "max_minutes"], "greater than 0"),
    ({"max_minutes": 10**6}, ["body", "training", "max_minutes"], "DESCENT_MAX_RUN_MINUTES"),
])
def test_training_limits_are_422_naming_the_field(client, iris_split, training, loc, words):
    r = client.post(f"{API}/experiments", json=body(iris_split["id"], training=training))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == loc and words in detail["msg"]
    assert client.get(f"{API}/experiments").json()["total"] == 0


def test_max_minutes_up_to_the_instance_maximum_is_stored(client, iris_split, settings):
    r = client.post(f"{API}/experiments", json=body(iris_split["id"], training={"max_minutes": settings.max_run_minutes}))
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["training"]["max_minutes"] == settings.max_run_minutes


BILLION_MLP = {"name": "mlp", "depth": 16, "width": 8192}


def test_a_billion_parameter_model_is_refused_with_its_estimate(client, iris_split):
    """An mlp of depth 16 × width 8192 (about 1.0 B parameters, ~16 GB with Adam state) got 201."""
    r = client.post(f"{API}/experiments", json=body(iris_split["id"], architecture=BILLION_MLP,
                                                   solver={"name": "adam"}))
    msg = _only_error(r, ["body", "architecture"])
    assert "DESCENT_CPU_MAX_PARAMS" in msg and "parameters" in msg and "GiB" in msg
    assert client.get(f"{API}/experiments").json()["total"] == 0


def test_a_solvers_own_size_limit_is_checked_at_submission(client, iris_split):
    """newton on a 67,843-parameter MLP got 201 and then failed in the worker."""
    r = client.post(f"{API}/experiments", json=body(iris_split["id"], architecture={"name": "mlp"},
                                                   solver={"name": "newton"}))
    msg = _only_error(r, ["body", "solver", "newton"])
    assert "2000" in msg and "parameters" in msg


def test_the_budget_is_the_queue_the_run_goes_to(client, iris_split, settings):
    """The same spec fits the gpu queue's budget and not the cpu queue's."""
    settings.cpu_max_params, settings.gpu_max_params = 1000, 10**6
    spec = body(iris_split["id"], architecture={"name": "mlp", "depth": 2, "width": 64})
    cpu = client.post(f"{API}/experiments", json={**spec, "training": {"device": "cpu"}})
    assert "DESCENT_CPU_MAX_PARAMS" in _only_error(cpu, ["body", "architecture"])
    gpu = client.post(f"{API}/experiments", json={**spec, "training": {"device": "cuda"}})
    assert gpu.status_code == 201 and gpu.json()["queue"] == "gpu", gpu.text


def test_a_batch_too_big_for_the_memory_budget_names_the_batch_that_fits(client, settings):
    """Full batch on digits through a wide layer: the activations, not the weights, pass 16 MiB."""
    digits = client.post(f"{API}/splits", json={"dataset": "digits"}).json()["id"]
    settings.cpu_max_memory_mb = 16
    spec = body(digits, architecture={"name": "mlp", "depth": 1, "width": 2048}, training={"batch_size": None})
    msg = _only_error(client.post(f"{API}/experiments", json=spec), ["body", "training", "batch_size"])
    assert "DESCENT_CPU_MAX_MEMORY_MB" in msg
    fits = int(re.search(r"to at most (\d+)", msg).group(1))
    ok = client.post(f"{API}/experiments", json={**spec, "training": {"batch_size": fits}})
    assert ok.status_code == 201, ok.text


def _only_error(response, loc) -> str:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [d["loc"] for d in detail] == [loc], detail
    return detail[0]["msg"]
