"""Metric ingest, series, compare and the event stream over HTTP."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import update

from store.models import Experiment

API = "/api/v1"


@pytest.fixture
def experiment_ids(client, iris_split):
    body = {"name": "m", "split_id": iris_split["id"], "architecture": {"name": "linear"}, "solver": {"name": "sgd"}}
    return [client.post(f"{API}/experiments", json=body).json()["id"] for _ in range(3)]


def _post_points(client, eid, name, steps, values, t0=0.0):
    points = [{"name": name, "step": int(s), "epoch": 0, "value": float(v), "wall_time": t0 + float(s)}
              for s, v in zip(steps, values)]
    return client.post(f"{API}/experiments/{eid}/metrics", json={"points": points})


def test_ingest_is_idempotent_and_series_round_trip(client, experiment_ids):
    eid = experiment_ids[0]
    assert _post_points(client, eid, "train/loss", range(10), np.linspace(1, 0.1, 10)).json() == {"inserted": 10}
    assert _post_points(client, eid, "train/loss", range(10), np.linspace(1, 0.1, 10)).json() == {"inserted": 0}
    series = client.get(f"{API}/experiments/{eid}/metrics").json()["series"]
    assert series["train/loss"]["steps"] == list(range(10))
    np.testing.assert_allclose(series["train/loss"]["values"], np.linspace(1, 0.1, 10))


def test_long_series_is_downsampled_and_keeps_its_spike(client, experiment_ids):
    eid = experiment_ids[0]
    values = np.zeros(5000)
    values[1234] = 50.0
    assert _post_points(client, eid, "grad_norm", range(5000), values).status_code == 200
    s = client.get(f"{API}/experiments/{eid}/metrics", params={"names": "grad_norm", "max_points": 100}).json()
    steps = s["series"]["grad_norm"]["steps"]
    assert len(steps) <= 100 and 1234 in steps


def test_compare_returns_series_and_summary_table(client, experiment_ids):
    a, b, _ = experiment_ids
    _post_points(client, a, "val/loss", range(5), [3, 1, 2, 0.5, 0.7], t0=100)
    _post_points(client, b, "val/loss", range(3), [2, 2, 1])
    _post_points(client, b, "val/accuracy", range(3), [0.5, 0.9, 0.8])
    r = client.get(f"{API}/compare", params={"ids": f"{a},{b}", "max_points": 500})
    assert r.status_code == 200, r.text
    data = r.json()
    assert [e["id"] for e in data["experiments"]] == [a, b]
    assert data["experiments"][0]["series"]["val/loss"]["values"] == [3, 1, 2, 0.5, 0.7]
    rows = {(row["experiment_id"], row["name"]): row for row in data["summary"]}
    assert (rows[a, "val/loss"]["best_value"], rows[a, "val/loss"]["best_step"]) == (0.5, 3)
    assert (rows[a, "val/loss"]["final_value"], rows[a, "val/loss"]["time_to_best_s"]) == (0.7, 3.0)
    assert (rows[b, "val/accuracy"]["best_value"], rows[b, "val/accuracy"]["best_step"]) == (0.9, 1)
    only = client.get(f"{API}/compare", params={"ids": f"{a},{b}", "names": "val/accuracy"}).json()
    assert {row["name"] for row in only["summary"]} == {"val/accuracy"}


# written out here, not derived from core.metrics: the api must answer these
DIRECTIONS = {"val/accuracy": True, "val/bacc": True, "test/r2": True, "val/loss": False, "train/loss": False}


def test_every_series_summary_row_and_event_carries_its_direction(client, experiment_ids, session_factory):
    a, b, _ = experiment_ids
    for eid in (a, b):
        for name in DIRECTIONS:
            assert _post_points(client, eid, name, range(3), [0.5, 0.25, 0.75]).status_code == 200
    series = client.get(f"{API}/experiments/{a}/metrics").json()["series"]
    assert {n: s["higher_is_better"] for n, s in series.items()} == DIRECTIONS
    data = client.get(f"{API}/compare", params={"ids": f"{a},{b}"}).json()
    for experiment in data["experiments"]:
        assert {n: s["higher_is_better"] for n, s in experiment["series"].items()} == DIRECTIONS
    assert len(data["summary"]) == 2 * len(DIRECTIONS)
    for row in data["summary"]:
        assert row["higher_is_better"] is DIRECTIONS[row["name"]]
        assert row["best_value"] == (0.75 if DIRECTIONS[row["name"]] else 0.25)
    with session_factory() as s:
        s.execute(update(Experiment).where(Experiment.id == a).values(status="succeeded"))
        s.commit()
    streamed = {n: s["higher_is_better"] for kind, data in _read_events(client, a) if kind == "metrics"
                for n, s in data.items()}
    assert streamed == DIRECTIONS


@pytest.mark.parametrize("ids, code", [("", 422), ("1,x", 422), ("-1", 422), ("999999", 404)])
def test_compare_rejects_bad_ids(client, ids, code):
    assert client.get(f"{API}/compare", params={"ids": ids}).status_code == code


def test_stream_sends_metrics_and_status_then_ends(client, experiment_ids, session_factory):
    eid = experiment_ids[0]
    _post_points(client, eid, "train/loss", range(3), [1.0, 0.5, 0.25])
    with session_factory() as s:
        s.execute(update(Experiment).where(Experiment.id == eid).values(status="succeeded", progress=1.0))
        s.commit()
    with client.stream("GET", f"{API}/experiments/{eid}/stream") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    events = [(block.split("\n")[0][len("event: "):], json.loads(block.split("\n")[1][len("data: "):]))
              for block in text.strip().split("\n\n")]
    assert events[0] == ("metrics", {"train/loss": {"steps": [0, 1, 2], "values": [1.0, 0.5, 0.25],
                                                    "higher_is_better": False, "diagnostic": False}})
    assert events[1][0] == "status" and events[1][1]["status"] == "succeeded"


def _read_events(client, eid) -> list[tuple[str, dict]]:
    with client.stream("GET", f"{API}/experiments/{eid}/stream") as r:
        text = "".join(r.iter_text())
    return [(block.split("\n")[0][len("event: "):], json.loads(block.split("\n")[1][len("data: "):]))
            for block in text.strip().split("\n\n")]


@pytest.mark.parametrize("sizes", [
    {"train/loss": 15_000, "val/loss": 3},  # past one poll's 10,000 points per series
    {"train/loss": 20_000},  # exactly two polls' worth
    {"train/loss": 10_001, "lr": 25_000},
])
def test_stream_of_a_finished_run_sends_every_point_exactly_once(client, experiment_ids, session_factory, sizes):
    eid = experiment_ids[0]
    for name, n in sizes.items():
        assert _post_points(client, eid, name, range(n), np.arange(n) / n).json() == {"inserted": n}
    with session_factory() as s:
        s.execute(update(Experiment).where(Experiment.id == eid).values(status="succeeded", progress=1.0))
        s.commit()
    events = _read_events(client, eid)
    assert events[-1][0] == "status" and events[-1][1]["status"] == "succeeded"
    assert [kind for kind, _ in events[:-1]] == ["metrics"] * (len(events) - 1)  # the status comes last
    got: dict[str, list[int]] = {}
    values: dict[str, list[float]] = {}
    for _, data in events[:-1]:
        for name, series in data.items():
            got.setdefault(name, []).extend(series["steps"])
            values.setdefault(name, []).extend(series["values"])
    assert got == {name: list(range(n)) for name, n in sizes.items()}
    for name, n in sizes.items():
        np.testing.assert_allclose(values[name], np.arange(n) / n)


def test_streamed_events_conform_to_the_schemas_the_document_names(client, experiment_ids, session_factory):
    """Each ``data:`` of the stream validates against the schema the OpenAPI document gives its
    event name (``x-events``), for a finished run and for a deleted one."""
    from tests.api.conformance import validator_for

    document = client.get(f"{API}/openapi.json").json()
    media = document["paths"]["/api/v1/experiments/{experiment_id}/stream"]["get"]["responses"]["200"]["content"]
    schemas = media["text/event-stream"]["x-events"]
    done, gone = experiment_ids[:2]
    _post_points(client, done, "train/loss", range(3), [1.0, 0.5, 0.25])
    client.post(f"{API}/experiments/{done}/metrics", json={"points": [{"name": "val/loss", "step": 3, "value": None}]})
    with session_factory() as s:
        s.execute(update(Experiment).where(Experiment.id == done).values(status="succeeded", progress=1.0))
        s.commit()
    events = _read_events(client, done)
    with session_factory() as s:
        s.execute(update(Experiment).where(Experiment.id == gone).values(status="cancelled"))
        s.commit()
    assert client.delete(f"{API}/experiments/{gone}").status_code == 204
    with client.stream("GET", f"{API}/experiments/{gone}/stream") as r:
        assert r.status_code == 404  # a deleted run has no stream to open
    assert {kind for kind, _ in events} == {"metrics", "status"}
    for kind, data in events:
        validator_for(document, schemas[kind]).validate(data)
    with pytest.raises(Exception, match="not of type"):
        validator_for(document, schemas["metrics"]).validate({"train/loss": {"steps": "x", "values": [],
                                                                           "higher_is_better": True,
                                                                           "diagnostic": False}})


def test_an_experiment_records_a_bounded_number_of_distinct_metric_names(client, experiment_ids, settings):
    """Issue 12: a thousand names in one request took 19 s of api time; past the limit nothing is stored."""
    eid, limit = experiment_ids[0], settings.max_metric_names
    many = {"points": [{"name": f"m{i}", "step": 0, "value": 1.0} for i in range(limit + 1)]}
    r = client.post(f"{API}/experiments/{eid}/metrics", json=many)
    assert r.status_code == 422 and "DESCENT_MAX_METRIC_NAMES" in r.json()["detail"][0]["msg"]
    assert client.get(f"{API}/experiments/{eid}/metrics").json()["series"] == {}
    first = {"points": [{"name": f"m{i}", "step": 0, "value": 1.0} for i in range(limit)]}
    assert client.post(f"{API}/experiments/{eid}/metrics", json=first).status_code == 200
    more_of_the_same = {"points": [{"name": "m0", "step": 1, "value": 0.5}]}
    assert client.post(f"{API}/experiments/{eid}/metrics", json=more_of_the_same).status_code == 200
    one_more = {"points": [{"name": "another", "step": 0, "value": 1.0}]}
    assert client.post(f"{API}/experiments/{eid}/metrics", json=one_more).status_code == 422


def test_an_experiment_records_a_bounded_number_of_points_over_http(client, experiment_ids, settings):
    """DESCENT_MAX_METRIC_POINTS through the route: the batch that would pass it stores nothing,
    a re-sent batch already stored is still fine."""
    eid = experiment_ids[0]
    settings.max_metric_points = 10
    first = {"points": [{"name": "loss", "step": i, "value": 1.0} for i in range(8)]}
    assert client.post(f"{API}/experiments/{eid}/metrics", json=first).status_code == 200
    over = {"points": [{"name": "loss", "step": i, "value": 1.0} for i in range(8, 11)]}
    r = client.post(f"{API}/experiments/{eid}/metrics", json=over)
    assert r.status_code == 422 and "DESCENT_MAX_METRIC_POINTS" in r.json()["detail"][0]["msg"], r.text
    assert client.get(f"{API}/experiments/{eid}/metrics").json()["series"]["loss"]["steps"] == list(range(8))
    assert client.post(f"{API}/experiments/{eid}/metrics", json=first).status_code == 200  # a re-send
    fits = {"points": [{"name": "loss", "step": i, "value": 1.0} for i in range(8, 10)]}
    assert client.post(f"{API}/experiments/{eid}/metrics", json=fits).status_code == 200


@pytest.mark.parametrize(("name", "diagnostic"), [
    ("train/loss", False), ("val/accuracy", False), ("test/r2", False), ("lr", True), ("grad_norm", True),
    ("update_ratio", True), ("epoch_time", True), ("val/mse", False),
])
def test_series_and_summaries_say_whether_a_metric_is_a_diagnostic(client, experiment_ids, name, diagnostic):
    eid = experiment_ids[0]
    assert _post_points(client, eid, name, [1, 2], [0.5, 0.25]).status_code == 200
    series = client.get(f"{API}/experiments/{eid}/metrics").json()["series"][name]
    summary = client.get(f"{API}/compare", params={"ids": str(eid)}).json()["summary"]
    assert series["diagnostic"] is diagnostic
    assert [r["diagnostic"] for r in summary if r["name"] == name] == [diagnostic]
