"""The race page (web/static/races.js, race.js, contour.js) against a real `descent up` and its lab
worker: a race made with the form draws the function's contour (a canvas of many colours) with
each racer's marker where the api says it ended, the step slider moves the markers back to the
start, Play animates through the steps, the loss curves are the api's; the share link runs the
same race again (the same trajectories); a bad value comes back beside its field."""

from __future__ import annotations

import pytest

from tests.web.harness import chart_data, open_view, shoot

pytestmark = pytest.mark.browser

DONE_TIMEOUT_MS = 60_000
STEPS = 150


def _distinct_colours(page) -> int:
    return page.eval_on_selector("#race-canvas", """c => {
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const seen = new Set();
        for (let i = 0; i < data.length; i += 4 * 7) seen.add(data[i] * 65536 + data[i + 1] * 256 + data[i + 2]);
        return seen.size;
    }""")


def _markers(page) -> list[list[float]]:
    return page.eval_on_selector("#race-canvas", "c => c.__race.markers")


def _pixels(point, bounds, size):
    """Where (x, y) lands on a size × size canvas spanning bounds, y upwards."""
    x_min, x_max, y_min, y_max = bounds
    return [(point[0] - x_min) / (x_max - x_min) * size[0], size[1] - (point[1] - y_min) / (y_max - y_min) * size[1]]


def _wait_drawn(page) -> int:
    page.wait_for_selector("#view[data-rendered='race'] #race-canvas[data-step]", timeout=DONE_TIMEOUT_MS)
    return int(page.url.rsplit("/", 1)[1])


def test_a_race_from_the_form_draws_the_contour_and_animates(page, dashboard, api):
    open_view(page, dashboard, "#/races", "races")
    page.fill("#steps-field input[name=steps]", str(STEPS))
    page.click("#new-race button[type=submit]")
    race_id = _wait_drawn(page)
    race = api.get(f"/races/{race_id}").json()
    fn = next(f for f in api.get("/races/functions").json()["items"] if f["name"] == race["spec"]["function"])
    racers = race["result"]["racers"]
    assert race["status"] == "done" and len(racers) == 4 and fn["name"] == "rosenbrock"
    assert _distinct_colours(page) > 30, "a shaded contour plot, not a blank canvas"
    size = page.eval_on_selector("#race-canvas", "c => [c.width, c.height]")

    # at the last step each marker is where the api says its racer ended
    assert page.get_attribute("#race-canvas", "data-step") == str(STEPS)
    for marker, racer in zip(_markers(page), racers, strict=True):
        assert marker == pytest.approx(_pixels(racer["trajectory"][-1], fn["bounds"], size), abs=1e-6)
    shoot(page, "race-rosenbrock")

    # the slider takes every marker back to the start
    page.fill("#race-step", "0")
    start = _pixels(race["spec"]["start"], fn["bounds"], size)
    assert all(m == pytest.approx(start, abs=1e-6) for m in _markers(page))
    assert page.inner_text("#race-step-text") == f"step 0 / {STEPS}"

    # Play runs from there through the steps to the end
    page.click("#race-play")
    page.wait_for_function(f"() => {{ const s = +document.querySelector('#race-canvas').dataset.step; "
                           f"return s > 0 && s < {STEPS}; }}", timeout=10_000)
    shoot(page, "race-rosenbrock-playing")
    page.wait_for_function(f"() => document.querySelector('#race-canvas').dataset.step === '{STEPS}'",
                           timeout=20_000)

    loss = chart_data(page, "#race-loss")
    assert loss["labels"] == [r["label"] for r in racers]
    assert loss["ys"] == [r["loss"] for r in racers]


def test_the_share_link_runs_the_same_race_again(page, dashboard, api):
    spec = {"function": "himmelblau", "start": [0.5, -0.5], "steps": 80, "racers": [
        {"solver": {"name": "adam", "base_lr": 0.1}, "scheduler": {"name": "cosineannealinglr"}},
        {"label": "momentum", "solver": {"name": "sgd", "base_lr": 0.005, "momentum": 0.9}},
    ]}
    first = api.post("/races", json=spec).json()
    open_view(page, dashboard, f"#/races/{first['id']}", "race", timeout_ms=DONE_TIMEOUT_MS)
    _wait_drawn(page)
    shoot(page, "race-himmelblau")
    page.click("#race-share")
    again = _wait_drawn(page)
    assert again != first["id"]
    one, two = (api.get(f"/races/{i}").json() for i in (first["id"], again))
    assert two["spec"] == one["spec"]
    assert [r["trajectory"] for r in two["result"]["racers"]] == [r["trajectory"] for r in one["result"]["racers"]]


def test_a_bad_value_comes_back_beside_its_field(page, dashboard):
    open_view(page, dashboard, "#/races", "races")
    page.fill("#racers fieldset[data-index='1'] .field[data-field='racers.1.solver.base_lr'] input", "-1")
    page.click("#new-race button[type=submit]")
    error = page.wait_for_selector(".field.invalid[data-field='racers.1.solver.base_lr'] .field-error")
    assert "greater than" in error.inner_text()
    shoot(page, "race-form-422")
