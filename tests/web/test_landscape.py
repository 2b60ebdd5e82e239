"""A succeeded run's loss landscape on its page (web/static/landscape.js) against a real `descent
up` and its lab worker: computing a 2-D map draws a heat map with contour lines (a canvas of many
colours) with the start and end marked, held to what the api stored; a revisit draws the stored
one without asking again; a 1-D line draws the api's values; a run's page refuses what the api
refuses, saying why."""

from __future__ import annotations

import pytest

from tests.web.harness import chart_data, open_view, shoot

pytestmark = pytest.mark.browser

DONE_TIMEOUT_MS = 120_000


def _compute(page, dims: str, points: str) -> None:
    page.select_option("#landscape-dims", dims)
    page.fill("#landscape-points", points)
    page.click("#landscape-compute")
    page.wait_for_selector("#landscape-slot[data-landscape-status='done']", timeout=DONE_TIMEOUT_MS)


def _distinct_colours(page) -> int:
    return page.eval_on_selector("#landscape-canvas", """c => {
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const seen = new Set();
        for (let i = 0; i < data.length; i += 4 * 7) seen.add(data[i] * 65536 + data[i + 1] * 256 + data[i + 2]);
        return seen.size;
    }""")


def test_a_plane_is_drawn_as_a_heat_map_and_a_revisit_shows_it_at_once(page, dashboard, api, finished_pair):
    run = finished_pair[0]
    open_view(page, dashboard, f"#/experiments/{run['id']}", "experiment")
    page.wait_for_selector("#landscape", state="visible")
    _compute(page, "2", "9")
    stored = api.get(f"/experiments/{run['id']}/landscapes").json()["items"][0]
    assert stored["status"] == "done" and stored["spec"]["points"] == 9
    canvas = page.eval_on_selector("#landscape-canvas", "c => ({...c.dataset})")
    val = [v for row in stored["result"]["val"]["loss"] for v in row if v is not None]
    assert canvas["points"] == "9" and canvas["part"] == "val"
    assert float(canvas["min"]) == pytest.approx(min(val), rel=1e-6)
    assert float(canvas["max"]) == pytest.approx(max(val), rel=1e-6)
    assert [float(c) for c in canvas["start"].split(",")] == pytest.approx(stored["result"]["start"]["coords"])
    assert _distinct_colours(page) > 30, "a heat map, not a blank canvas"
    assert "val loss" in page.inner_text("#landscape-facts")
    shoot(page, "landscape-2d")

    page.select_option("#landscape-part", "train")
    assert page.eval_on_selector("#landscape-canvas", "c => c.dataset.part") == "train"

    # a second visit draws the stored landscape without computing it again
    page.reload()
    page.wait_for_selector("#landscape-canvas", timeout=20_000)
    assert page.get_attribute("#landscape-slot", "data-landscape-status") == "done"
    assert len(api.get(f"/experiments/{run['id']}/landscapes").json()["items"]) == 1


def test_a_line_draws_the_apis_values(page, dashboard, api, finished_pair):
    run = finished_pair[1]
    open_view(page, dashboard, f"#/experiments/{run['id']}", "experiment")
    page.wait_for_selector("#landscape", state="visible")
    _compute(page, "1", "7")
    stored = next(item for item in api.get(f"/experiments/{run['id']}/landscapes").json()["items"]
                  if item["spec"]["dims"] == 1)
    page.wait_for_selector("#chart-landscape .u-over")
    drawn = chart_data(page, "#chart-landscape")
    assert drawn["labels"] == ["train/loss", "val/loss", "start", "end"]
    # the x values are the grid's and the start's (uPlot joins them)
    result = stored["result"]
    at = {x: i for i, x in enumerate(drawn["xs"])}
    assert [drawn["ys"][1][at[x]] for x in result["axis"]] == pytest.approx(result["val"]["loss"])
    assert drawn["ys"][3][at[0.0]] == pytest.approx(result["centre"]["val"]["loss"])
    start = max(-1.0, min(1.0, result["start"]["coords"][0]))
    assert start in at and drawn["ys"][2][at[start]] is not None
    shoot(page, "landscape-1d")


def test_best_weights_a_run_never_stored_are_refused_on_the_page(page, dashboard, api, finished_pair, instance):
    run = finished_pair[1]
    best = instance.data_dir / "checkpoints" / str(run["id"]) / "best.pt"
    moved = best.with_suffix(".moved")
    best.rename(moved)
    try:
        open_view(page, dashboard, f"#/experiments/{run['id']}", "experiment")
        page.wait_for_selector("#landscape", state="visible")
        page.select_option("#landscape-which", "best")
        page.click("#landscape-compute")
        assert "use which=last" in page.inner_text("#landscape-refused", timeout=10_000)
    finally:
        moved.rename(best)
