"""Studies in the dashboard (web/static/studies.js, study.js, new_study.js): a small solver
tournament on iris watched to its end on its page (trials table, best trial, objective by trial,
parallel coordinates, importance, the sensitivity map) and checked against the api; the
new-study form (a 422 beside its field, then a tournament created); the studies list."""

from __future__ import annotations

import re

import pytest

from tests.web.harness import chart_data, open_view, shoot, submit, wait_finished

pytestmark = pytest.mark.browser

SOLVERS = ["sgd", "adam", "rmsprop"]
HASTY = {"sgd", "adagrad", "adadelta", "asgd", "rprop", "rmsprop", "adam", "adamax", "adamw", "lion"}
TERMINAL = ("succeeded", "failed", "cancelled", "pruned")


def _format(value: float | None) -> str:
    """charts.js formatNumber for values between 1e-3 and 1e5: four significant digits."""
    return "–" if value is None else f"{value:.4g}"


@pytest.fixture(scope="module")
def tournament(api, iris_split) -> dict:
    """3 solvers × 3 learning rates, 6 epochs, ASHA on val/accuracy: started by the module's first
    test so that it trains while the form is tested."""
    base = {"name": "iris-tournament", "split_id": iris_split["id"], "architecture": {"name": "mlp", "width": 16},
            "solver": {"name": "adam"}, "training": {"epochs": 6, "batch_size": 16}}
    response = api.post("/studies/tournament", json={
        "base": base, "solvers": SOLVERS, "lr_low": 1e-3, "lr_high": 1.0, "points": 3, "pruner": "asha",
        "metric": "val/accuracy", "parallel": 3, "name": "browser tournament"})
    assert response.status_code == 201, response.text
    return response.json()


def _field(tab, path: str):
    return tab.locator(f".field[data-field='{path}'] :is(input, select, textarea)").first


def test_the_form_shows_the_apis_error_then_creates_a_tournament(page, dashboard, api, iris_split, tournament):
    before = api.get("/studies").json()["total"]
    open_view(page, dashboard, "#/studies/new", "new-study")
    checked = page.eval_on_selector_all("#tournament-solvers input:checked", "els => els.map(e => e.value)")
    assert set(checked) == HASTY & {s["name"] for s in api.get("/solvers").json()}
    page.select_option("select[name=split_id]", str(iris_split["id"]))
    _field(page, "name").fill("form tournament")
    _field(page, "base.architecture.width").fill("16")
    _field(page, "base.training.epochs").fill("1")
    _field(page, "base.training.batch_size").fill("32")
    for box in page.locator("#tournament-solvers input[type=checkbox]").all():
        box.uncheck()
    for name in ("adam", "sgd"):
        page.check(f"#tournament-solvers input[value={name}]")
    _field(page, "points").fill("2")
    _field(page, "pruner").select_option("median")
    page.check(".field[data-field='per_solver'] input")
    _field(page, "parallel").fill("1")
    _field(page, "lr_low").fill("0")
    page.click("#new-study button[type=submit]")
    error = page.locator(".field[data-field='lr_low'] .field-error")
    error.wait_for(state="visible")
    direct = api.post("/studies/tournament", json={"base": {}, "lr_low": 0})
    assert direct.status_code == 422
    assert next(d["msg"] for d in direct.json()["detail"] if d["loc"] == ["body", "lr_low"]) in error.inner_text()
    assert page.locator(".field.invalid").count() == 1, "only the bad field is marked"
    assert page.url.endswith("#/studies/new")
    assert api.get("/studies").json()["total"] == before
    shoot(page, "new-study-bad-lr-low")

    _field(page, "lr_low").fill("0.001")
    page.click("#new-study button[type=submit]")
    page.wait_for_url(re.compile(r"#/studies/\d+$"))
    study_id = int(page.url.rsplit("/", 1)[1])
    api.post(f"/studies/{study_id}/cancel")  # the request is what is checked: no need to train it
    page.wait_for_selector("#view[data-rendered='study']")
    stored = api.get(f"/studies/{study_id}").json()
    assert stored["kind"] == "tournament" and stored["name"] == "form tournament"
    assert sorted(stored["spec"]["space"]["solver.name"]["values"]) == ["adam", "sgd"]
    assert stored["spec"]["space"]["solver.name"]["when"]["adam"]["solver.base_lr"] == {
        "type": "float", "low": 0.001, "high": 1.0, "log": True, "points": 2}
    assert stored["spec"]["pruner"]["name"] == "median" and stored["spec"]["pruner"]["group_by"] == "solver.name"
    assert stored["spec"]["budget"]["parallel"] == 1
    assert stored["spec"]["base"]["training"] == {"epochs": 1, "batch_size": 32}
    assert stored["spec"]["base"]["architecture"]["width"] == 16
    assert stored["spec"]["objective"]["metric"] == "val/accuracy"


def test_a_tournament_watched_to_its_end(page, dashboard, api, tournament):
    open_view(page, dashboard, f"#/studies/{tournament['id']}", "study")
    assert page.locator("#cancel-study").count() == 1, "a running study can be cancelled"
    page.wait_for_selector("#view[data-finished='1']", timeout=240_000)
    study = api.get(f"/studies/{tournament['id']}").json()
    assert study["status"] == "done"
    trials = study["trials"]
    assert len(trials) == 9
    assert page.inner_text("#study-header .status").lower() == "done"
    assert page.locator("#cancel-study").count() == 0

    # (a) the trials table, best first: the succeeded ones by value, then the others with one
    rows = page.locator("#trials-table tbody tr")
    assert rows.count() == 9
    by_number = {t["number"]: t for t in trials}
    shown = []
    for i in range(9):
        row = rows.nth(i)
        trial = by_number[int(row.get_attribute("data-number"))]
        cells = row.locator("td")
        assert cells.nth(1).locator("a").get_attribute("href") == f"#/experiments/{trial['experiment_id']}"
        assert cells.nth(2).inner_text().lower() == trial["status"]
        assert cells.nth(3).inner_text() == trial["label"]
        assert cells.nth(4).inner_text() == _format(trial["value"])
        assert cells.nth(5).inner_text() == str(trial["epoch"])
        shown.append(trial["number"])
    rank = {t["number"]: (0 if t["status"] == "succeeded" else 1 if t["value"] is not None else 2) for t in trials}
    assert shown == sorted(shown, key=lambda n: (rank[n], -(by_number[n]["value"] or 0) if rank[n] < 2 else 0, n))
    # (b) the best trial
    assert int(page.get_attribute("#best-trial", "data-number")) == study["best"]["number"]
    assert shown[0] == study["best"]["number"]

    # (f) the sensitivity map: a series per solver, a point per trial with a value, pruned hollow
    series = page.eval_on_selector_all("#sensitivity-map g.series",
                                       "els => els.map(e => [e.dataset.series, Number(e.dataset.points)])")
    assert series == [[s, sum(1 for t in trials if t["params"]["solver.name"] == s and t["value"] is not None)]
                      for s in SOLVERS]
    hollow = page.eval_on_selector_all("#sensitivity-map .marker.hollow", "els => els.map(e => Number(e.dataset.trial))")
    assert sorted(hollow) == sorted(t["number"] for t in trials if t["status"] == "pruned" and t["value"] is not None)
    assert any(t["status"] == "pruned" for t in trials), "ASHA pruned none: the hollow markers are untested"
    legend = page.eval_on_selector_all("#sensitivity-legend li[data-series]", "els => els.map(e => e.dataset.series)")
    assert legend == SOLVERS

    # (e) importance bars, largest first, as the api says
    bars = page.eval_on_selector_all("#study-importance .bar-row",
                                     "els => els.map(e => [e.dataset.param, Number(e.dataset.share)])")
    expected = sorted(study["importance"].items(), key=lambda kv: -kv[1])
    assert [p for p, _ in bars] == [p for p, _ in expected]
    assert [s for _, s in bars] == pytest.approx([s for _, s in expected])

    # (d) parallel coordinates: a line per finished trial, base LR on a log axis
    finished = [t for t in trials if t["status"] in TERMINAL and t["value"] is not None]
    assert page.locator("#study-parallel polyline.pc-line").count() == len(finished)
    assert page.get_attribute("#study-parallel .pc-axis[data-param='solver.base_lr']", "data-log") == "1"
    # (c) the objective by trial: every trial marked
    assert page.locator("#study-history .marker").count() == 9
    shoot(page, "study-tournament")

    # a trial's run page links back to its study
    trial = trials[0]
    open_view(page, dashboard, f"#/experiments/{trial['experiment_id']}", "experiment")
    link = page.locator("#experiment-study a")
    assert link.inner_text() == f"trial {trial['number']} of study {study['id']}"
    assert link.get_attribute("href") == f"#/studies/{study['id']}"


def test_the_studies_list_shows_it(page, dashboard, api, tournament):
    study = api.get(f"/studies/{tournament['id']}").json()
    open_view(page, dashboard, "#/studies", "studies")
    row = page.locator(f"#studies-table tr[data-id='{study['id']}']")
    cells = row.locator("td")
    assert cells.nth(1).inner_text() == study["name"]
    assert cells.nth(1).locator("a").get_attribute("href") == f"#/studies/{study['id']}"
    assert cells.nth(2).inner_text() == "tournament"
    assert cells.nth(3).inner_text().lower() == study["status"]
    done = sum(n for s, n in study["counts"].items() if s in TERMINAL)
    assert cells.nth(4).inner_text() == f"{done} / {study['max_trials']}"
    best = study["best"]
    assert cells.nth(5).inner_text() == (_format(best["value"]) if best else "–")
    assert cells.nth(6).inner_text() == (best["label"] if best else "")
    shoot(page, "studies-list")
    page.click("#view a.button:has-text('New study')")
    page.wait_for_selector("#view[data-rendered='new-study']")


def test_a_range_test_run_draws_loss_against_lr_and_offers_its_suggestion(page, dashboard, api, iris_split):
    run = submit(api, {"name": "range-test", "split_id": iris_split["id"], "architecture": {"name": "mlp", "width": 16},
                       "solver": {"name": "adam"},
                       "training": {"batch_size": 16, "range_test": {"min_lr": 1e-4, "max_lr": 10, "num_steps": 30}}})
    finished = wait_finished(api, run["id"])
    assert finished["status"] == "succeeded", finished["error"]
    series = api.get(f"/experiments/{run['id']}/metrics").json()["series"]
    suggested = series["range/suggested_lr"]["values"][-1]
    open_view(page, dashboard, f"#/experiments/{run['id']}", "experiment")
    page.wait_for_selector("#chart-range-test .uplot")
    drawn = chart_data(page, "#chart-range-test")
    assert drawn["labels"] == ["train/loss", "range/smoothed_loss"]
    lr = dict(zip(series["lr"]["steps"], series["lr"]["values"]))
    assert drawn["xs"] == sorted(lr.values())
    by_lr = {lr[s]: v for s, v in zip(series["range/smoothed_loss"]["steps"], series["range/smoothed_loss"]["values"])}
    assert drawn["ys"][1] == [by_lr.get(x) for x in drawn["xs"]]
    assert page.eval_on_selector("#chart-range-test", "el => el.__plot.scales.x.distr") == 3, "a log lr axis"
    assert float(page.get_attribute("#chart-range-test", "data-suggested-lr")) == suggested
    shoot(page, "range-test")
    page.click("#use-lr")
    page.wait_for_selector("#view[data-rendered='new']")
    assert float(_field(page, "solver.base_lr").input_value()) == suggested
    assert _field(page, "training.range_test").input_value() == "", "the clone trains at the rate it was given"


def test_the_form_makes_a_search_from_a_json_space(page, dashboard, api, iris_split):
    open_view(page, dashboard, "#/studies/new", "new-study")
    page.check("#study-kind input[value=search]")
    page.select_option("select[name=split_id]", str(iris_split["id"]))
    _field(page, "name").fill("form search")
    space = page.locator(".field[data-field='space'] textarea")
    space.fill("{}")
    page.click("#new-study button[type=submit]")
    error = page.locator(".field[data-field='space'] .field-error")
    error.wait_for(state="visible")
    assert "the search space is empty" in error.inner_text()
    space.fill('{"solver.base_lr": {"type": "float", "low": 0.001, "high": 0.1, "log": true}}')
    _field(page, "strategy").select_option("random")
    _field(page, "budget.max_trials").fill("2")
    _field(page, "budget.parallel").fill("1")
    page.click("#new-study button[type=submit]")
    page.wait_for_url(re.compile(r"#/studies/\d+$"))
    study_id = int(page.url.rsplit("/", 1)[1])
    api.post(f"/studies/{study_id}/cancel")
    stored = api.get(f"/studies/{study_id}").json()
    assert stored["kind"] == "search" and stored["name"] == "form search"
    assert stored["spec"]["space"] == {"solver.base_lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True,
                                                          "points": None}}
    assert stored["spec"]["strategy"] == "random" and stored["spec"]["budget"]["max_trials"] == 2
    assert stored["spec"]["objective"] == {"metric": "val/accuracy", "mode": "max", "use": "best"}
    page.wait_for_selector("#view[data-rendered='study']")
    page.wait_for_selector("#view[data-finished='1']", timeout=60_000)
    assert page.locator("#sensitivity-map").count() == 0, "a search has no sensitivity map"
    assert page.locator("#study-parallel .pc-axis[data-param='solver.base_lr'][data-log='1']").count() == 1
