"""The new-experiment form (web/static/new.js): create a run through it and watch it finish with
its curves drawn from the stream; the api's 422 errors beside the field that caused them; clone
with changes."""

from __future__ import annotations

import json
import math
import re

import pytest

from tests.web.harness import TINY_TRAINING, chart_data, open_view, shoot, wait_finished

pytestmark = pytest.mark.browser


def field(tab, path: str, index: int | None = None):
    inputs = tab.locator(f".field[data-field='{path}'] input, .field[data-field='{path}'] select")
    return inputs.nth(index or 0)


def fill_form(tab, split_id: int, name: str, values: dict[tuple[str, int | None], str]) -> None:
    tab.select_option("select[name=split_id]", str(split_id))
    field(tab, "name").fill(name)
    for (path, index), value in values.items():
        field(tab, path, index).fill(value)


def test_create_through_the_form_and_watch_it_finish_with_curves(page, dashboard, api, iris_split):
    open_view(page, dashboard, "#/new", "new")
    page.select_option("select[name=architecture-name]", "mlp")
    page.select_option("select[name=solver-name]", "adam")
    page.select_option("select[name=scheduler-name]", "constant")
    fill_form(page, iris_split["id"], "form-adam", {
        ("architecture.width", None): "16", ("solver.base_lr", None): "0.01",
        ("training.epochs", None): str(TINY_TRAINING["epochs"]), ("training.batch_size", None): str(TINY_TRAINING["batch_size"]),
    })
    field(page, "tags").fill("browser, form")
    shoot(page, "new-experiment-filled")
    page.click("#new-experiment button[type=submit]")
    page.wait_for_url(re.compile(r"#/experiments/\d+$"))
    experiment_id = int(page.url.rsplit("/", 1)[1])
    page.wait_for_selector("#view[data-rendered='experiment']")
    shoot(page, "experiment-live")

    stored = api.get(f"/experiments/{experiment_id}").json()
    assert stored["name"] == "form-adam" and stored["tags"] == ["browser", "form"]
    assert stored["spec"]["solver"] == {**stored["spec"]["solver"], "name": "adam", "base_lr": 0.01}
    assert stored["spec"]["architecture"]["width"] == 16
    assert {k: stored["spec"]["training"][k] for k in TINY_TRAINING} == TINY_TRAINING

    page.wait_for_selector("#view[data-finished='1']", timeout=180_000)
    assert page.inner_text("#experiment-header .status").lower() == "succeeded"
    assert int(page.get_attribute("#view", "data-stream-events")) >= 1, "the page never heard from the stream"
    shoot(page, "experiment-succeeded")

    steps = TINY_TRAINING["epochs"] * math.ceil(iris_split["sizes"]["train"] / TINY_TRAINING["batch_size"])
    recorded = api.get(f"/experiments/{experiment_id}/metrics", params={"max_points": 1000}).json()["series"]
    for chart, names in [("loss", ["train/loss", "val/loss"]), ("accuracy", ["train/accuracy", "val/accuracy"]),
                         ("lr", ["lr"]), ("grad_norm", ["grad_norm"])]:
        drawn = chart_data(page, f"#chart-{chart}")
        for name in names:
            assert name in drawn["labels"], (chart, drawn["labels"])
            ys = drawn["ys"][drawn["labels"].index(name)]
            points = [(x, y) for x, y in zip(drawn["xs"], ys) if y is not None]
            assert points == list(zip(recorded[name]["steps"], recorded[name]["values"])), name
    # closed forms: one train/loss point per step, and a constant schedule draws base LR throughout
    lr = chart_data(page, "#chart-lr")
    assert len([y for y in lr["ys"][0] if y is not None]) == steps
    assert all(y == pytest.approx(0.01) for y in lr["ys"][0])
    assert chart_data(page, "#chart-loss")["xs"][-1] == steps


BAD_VALUES = [
    # (solver, field path, input index, typed value, the api's loc)
    ("adam", "solver.base_lr", None, "-0.1", ["body", "solver", "adam", "base_lr"]),
    ("sgd", "solver.base_lr", None, "-1", ["body", "solver", "sgd", "base_lr"]),
    ("adam", "solver.betas", 1, "1.5", ["body", "solver", "adam", "betas", 1]),
    ("adam", "solver.weight_decay", None, "-0.01", ["body", "solver", "adam", "weight_decay"]),
    ("adam", "architecture.dropout", None, "1", ["body", "architecture", "mlp", "dropout"]),
    ("adam", "training.epochs", None, "0", ["body", "training", "epochs"]),
]


def _value_at(spec: dict, loc: list, value: float) -> dict:
    """The same bad value placed in a request body by hand, to ask the api for its message."""
    path = [k for k in loc[1:] if k not in ("adam", "sgd", "mlp")]
    target = spec
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return spec


@pytest.mark.parametrize(("solver", "path", "index", "typed", "loc"), BAD_VALUES)
def test_an_out_of_bounds_value_shows_the_apis_error_beside_its_field(page, dashboard, api, iris_split,
                                                                      solver, path, index, typed, loc):
    before = api.get("/experiments", params={"limit": 1}).json()["total"]
    open_view(page, dashboard, "#/new", "new")
    page.select_option("select[name=architecture-name]", "mlp")
    page.select_option("select[name=solver-name]", solver)
    fill_form(page, iris_split["id"], f"bad-{path}", {(path, index): typed})
    page.click("#new-experiment button[type=submit]")
    error = page.locator(f".field[data-field='{path}'] .field-error")
    error.wait_for(state="visible")
    if path == "solver.base_lr" and solver == "adam":
        shoot(page, "new-experiment-negative-base-lr")

    spec = {"name": "oracle", "split_id": iris_split["id"], "architecture": {"name": "mlp"},
            "solver": {"name": solver, "betas": [0.9, 0.999]} if solver == "adam" else {"name": solver},
            "training": {}}
    direct = api.post("/experiments", json=_value_at(spec, loc, float(typed)))
    assert direct.status_code == 422
    message = next(d["msg"] for d in direct.json()["detail"] if d["loc"] == loc)
    assert message in error.inner_text()
    assert page.locator(".field.invalid").count() == 1, "only the bad field is marked"
    assert page.url.endswith("#/new")
    assert api.get("/experiments", params={"limit": 1}).json()["total"] == before


def test_clone_with_changes_starts_from_the_original(page, dashboard, api, finished_pair):
    original = finished_pair[1]
    open_view(page, dashboard, f"#/experiments/{original['id']}", "experiment")
    page.click("text=Clone with changes")
    page.wait_for_selector("#view[data-rendered='new']")
    assert page.input_value("select[name=solver-name]") == "sgd"
    assert float(field(page, "solver.base_lr").input_value()) == original["spec"]["solver"]["base_lr"]
    assert float(field(page, "solver.momentum").input_value()) == original["spec"]["solver"]["momentum"]
    assert field(page, "scheduler.T_max").input_value() == "", "a derived length must derive again"
    field(page, "solver.base_lr").fill("0.05")
    field(page, "training.epochs").fill("2")
    shoot(page, "clone-with-changes")
    page.click("#new-experiment button[type=submit]")
    page.wait_for_url(re.compile(r"#/experiments/\d+$"))
    clone_id = int(page.url.rsplit("/", 1)[1])
    clone = api.get(f"/experiments/{clone_id}").json()
    api.post(f"/experiments/{clone_id}/cancel")  # the spec is what is checked; no need to train it
    assert clone["name"] == f"{original['name']} (clone)"
    assert clone["spec"]["solver"] == {**original["spec"]["solver"], "base_lr": 0.05}
    assert clone["spec"]["architecture"] == original["spec"]["architecture"]
    assert clone["spec"]["training"]["epochs"] == 2
    # T_max is in epochs: derived from the clone's 2, not kept from the original's 4
    assert original["spec"]["scheduler"]["T_max"] == TINY_TRAINING["epochs"]
    assert clone["spec"]["scheduler"]["T_max"] == 2
    wait_finished(api, clone_id)


def test_a_nested_training_section_is_set_as_json_and_kept_by_a_clone(page, dashboard, api, iris_split):
    open_view(page, dashboard, "#/new", "new")
    page.select_option("select[name=architecture-name]", "mlp")
    page.select_option("select[name=solver-name]", "adam")
    fill_form(page, iris_split["id"], "form-early-stopping", {("training.epochs", None): "3"})
    box = page.locator(".field[data-field='training.early_stopping'] textarea")
    assert box.input_value() == "", "none by default"
    box.fill('{"metric": "val/accuracy", "patience": 2}')
    page.click("#new-experiment button[type=submit]")
    page.wait_for_url(re.compile(r"#/experiments/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    stored = api.get(f"/experiments/{run_id}").json()["spec"]["training"]
    assert stored["early_stopping"] == {"metric": "val/accuracy", "mode": "max", "patience": 2, "min_delta": 0.0}
    assert stored["range_test"] is None
    api.post(f"/experiments/{run_id}/cancel")

    page.goto(f"{dashboard}/#/new?from={run_id}")
    page.wait_for_selector("#view[data-rendered='new']")
    kept = page.locator(".field[data-field='training.early_stopping'] textarea").input_value()
    assert json.loads(kept) == stored["early_stopping"]
    box = page.locator(".field[data-field='training.early_stopping'] textarea")
    box.fill('{"metric": "val/acuracy"}')  # a typo: the api's hint lands beside the field
    page.click("#new-experiment button[type=submit]")
    error = page.locator(".field[data-field='training.early_stopping'] .field-error")
    error.wait_for(state="visible")
    assert "did you mean val/accuracy" in error.inner_text()
