"""One run's page (web/static/experiment.js and its pieces): legends that read the latest values
unhovered, the summary card (latest and best by the api's direction, duration, ETA), the loss
chart's log scale, the notices where there are no curves (queued, starting; failed:
test_experiment.py), deleting a finished run and editing its name, tags and notes."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from core.metrics import is_diagnostic
from tests.web.harness import chart_data, open_view, shoot, submit

pytestmark = pytest.mark.browser


def raw_series(api, experiment_id: int) -> dict:
    return api.get(f"/experiments/{experiment_id}/metrics", params={"max_points": 100_000}).json()["series"]


def finite(values: list) -> list[float]:
    return [v for v in values if v is not None]


def shown_number(text: str) -> float:
    return float(text.strip().rstrip(" ↑↓"))


def legend(page, chart: str) -> dict[str, str]:
    """Each legend row's label and value as the page shows them."""
    rows = page.locator(f"{chart} .u-legend tr.u-series")
    return {rows.nth(i).locator(".u-label").inner_text(): rows.nth(i).locator(".u-value").inner_text()
            for i in range(rows.count())}


def duration(seconds: float) -> str:
    s = round(seconds)
    h, m, sec = s // 3600, s % 3600 // 60, s % 60
    return f"{h}h {m:02d}m" if h else f"{m}m {sec:02d}s" if m else f"{sec}s"


def idle_queue_device(api) -> str:
    """A device whose queue no worker serves, so a run sent there stays queued."""
    queues = api.get("/queue").json()["queues"]
    return "cuda" if queues["gpu"]["workers"] == 0 else "cpu"


@pytest.fixture
def queued_run(api, iris_split):
    device = idle_queue_device(api)
    run = submit(api, {"name": "waits", "split_id": iris_split["id"], "architecture": {"name": "mlp", "width": 16},
                       "solver": {"name": "adam"}, "training": {"epochs": 2, "batch_size": 32, "device": device}})
    deadline = time.monotonic() + 30
    while True:  # until the broker took its message: the reason is then the one to show
        entry = next(w for w in api.get("/queue").json()["waiting"] if w["id"] == run["id"])
        if entry["cause"] != "unsent" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    yield run
    api.post(f"/experiments/{run['id']}/cancel")


def test_legends_read_the_latest_values_until_hovered(page, dashboard, api, finished_pair):
    run = finished_pair[0]
    open_view(page, dashboard, f"#/experiments/{run['id']}", "experiment")
    recorded = raw_series(api, run["id"])
    shown = legend(page, "#chart-loss")
    for name in ("train/loss", "val/loss"):
        assert shown_number(shown[name]) == pytest.approx(finite(recorded[name]["values"])[-1], rel=1e-3)
    assert shown_number(shown["step"]) == max(recorded["train/loss"]["steps"][-1], recorded["val/loss"]["steps"][-1])
    over = page.locator("#chart-loss .u-over")
    over.scroll_into_view_if_needed()  # the cards above may push it below the fold
    box = over.bounding_box()
    page.mouse.move(box["x"] + 3, box["y"] + box["height"] / 2)  # over the first steps
    hovered = legend(page, "#chart-loss")
    assert shown_number(hovered["train/loss"]) == pytest.approx(recorded["train/loss"]["values"][0], rel=1e-3)
    page.mouse.move(0, 0)
    assert legend(page, "#chart-loss") == shown, "leaving the chart goes back to the latest values"


def test_summary_card_latest_best_and_duration(page, dashboard, api, finished_pair):
    run = finished_pair[1]
    open_view(page, dashboard, f"#/experiments/{run['id']}", "experiment")
    for name, series in raw_series(api, run["id"]).items():
        values = finite(series["values"])
        best = max(values) if series["higher_is_better"] else min(values)
        row = page.locator(f"#run-summary tr[data-metric='{name}']")
        assert shown_number(row.locator("td[data-kind='latest']").inner_text()) == pytest.approx(values[-1], rel=1e-3, abs=1e-12)
        if series["diagnostic"]:  # lr, grad_norm, timings: a latest value, no best and no direction
            assert is_diagnostic(name) and row.locator("th").inner_text() == name
            assert row.locator("td[data-kind='best']").inner_text() == "–"
            continue
        assert row.locator("th").inner_text().endswith("↑" if series["higher_is_better"] else "↓")
        assert shown_number(row.locator("td[data-kind='best']").inner_text()) == pytest.approx(best, rel=1e-3, abs=1e-12)
    assert {"lr", "val/loss"} <= set(raw_series(api, run["id"])), "the run shows both kinds"
    took = datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["started_at"])
    assert page.inner_text("#run-timing dd[data-fact='duration']") == duration(took.total_seconds())
    assert page.locator("#run-timing dd[data-fact='ETA']").count() == 0, "a finished run has nothing left"
    shoot(page, "run-summary")


def test_eta_at_the_pace_so_far(page, dashboard):
    open_view(page, dashboard, "#/experiments", "experiments")
    started = "2025-03-14T09:00:00Z"
    now_ms = page.evaluate("Date.parse('2025-03-14T09:01:40Z')")  # 100 s after the start
    got = page.evaluate("""async ([started, now]) => {
        const m = await import('/run_summary.js');
        const quarter = m.timing({started_at: started, finished_at: null, progress: 0.25}, now);
        const queued = m.timing({started_at: null, finished_at: null, progress: 0}, now);
        return {quarter, queued, shown: m.formatDuration(quarter.remaining)};
    }""", [started, now_ms])
    assert got["quarter"]["elapsed"] == pytest.approx(100)
    assert got["quarter"]["remaining"] == pytest.approx(300), "a quarter done in 100 s leaves 300 s"
    assert got["shown"] == duration(300)
    assert got["queued"] is None


def test_loss_chart_log_scale(page, dashboard, api, finished_pair):
    run = finished_pair[0]
    open_view(page, dashboard, f"#/experiments/{run['id']}", "experiment")
    recorded = raw_series(api, run["id"])
    losses = [v for n, s in recorded.items() if n.endswith("/loss") for v in finite(s["values"]) if v > 0]
    wide = max(losses) / min(losses) > 100
    assert page.is_checked("#log-loss") == wide, "losses spanning more than 2 decades start on a log scale"
    assert (chart_data(page, "#chart-loss")["distr"] == 3) == wide
    page.click("#log-loss")
    assert (chart_data(page, "#chart-loss")["distr"] == 3) == (not wide)
    page.click("#log-loss")
    assert (chart_data(page, "#chart-loss")["distr"] == 3) == wide


def test_a_queued_run_says_why_it_waits(page, dashboard, api, queued_run):
    open_view(page, dashboard, f"#/experiments/{queued_run['id']}", "experiment")
    entry = next(w for w in api.get("/queue").json()["waiting"] if w["id"] == queued_run["id"])
    notice = page.locator("#run-state[data-state='queued']")
    assert notice.locator(".reason").inner_text() == entry["reason"]
    assert f"#{entry['position']} on the {entry['queue']} queue" in notice.inner_text()
    assert page.locator(".charts").is_hidden(), "no empty chart frames while nothing has run"
    assert page.locator("#delete").count() == 0, "a live run cannot be deleted"
    shoot(page, "run-queued")


def test_a_running_run_without_points_says_it_is_starting(page, dashboard):
    open_view(page, dashboard, "#/experiments", "experiments")
    got = page.evaluate("""async () => {
        const m = await import('/run_state.js');
        const running = {status: 'running', worker_host: 'box:1', device: 'cpu', step: 0, epoch: 0, spec: {}};
        const starting = m.stateNotice(running, false);
        return {state: starting.dataset.state, text: starting.textContent, withPoints: m.stateNotice(running, true)};
    }""")
    assert got["state"] == "starting" and got["text"].startswith("Starting on box:1 on cpu")
    assert got["withPoints"] is None, "once points arrive the curves speak for themselves"


def test_delete_a_finished_run_after_confirming(page, dashboard, api, queued_run):
    assert api.post(f"/experiments/{queued_run['id']}/cancel").status_code == 200
    open_view(page, dashboard, f"#/experiments/{queued_run['id']}", "experiment")
    assert page.inner_text("#run-state") == "Cancelled before it recorded any metric."
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#delete")
    page.wait_for_timeout(300)
    assert api.get(f"/experiments/{queued_run['id']}").status_code == 200, "dismissed: nothing is deleted"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete")
    page.wait_for_selector("#view[data-rendered='experiments']")
    assert api.get(f"/experiments/{queued_run['id']}").status_code == 404


def test_edit_name_tags_and_notes(page, dashboard, api, queued_run):
    open_view(page, dashboard, f"#/experiments/{queued_run['id']}", "experiment")
    page.click("#experiment-edit summary")
    page.fill("#experiment-edit-form input[name=name]", "waits-renamed")
    page.fill("#experiment-edit-form input[name=tags]", "edited, second , edited")
    page.fill("#experiment-edit-form textarea[name=description]", "tries a queue nobody serves")
    page.click("#experiment-edit-form button[type=submit]")
    page.wait_for_selector("#experiment-notes")
    stored = api.get(f"/experiments/{queued_run['id']}").json()
    assert stored["name"] == "waits-renamed" and stored["tags"] == ["edited", "second"]
    assert stored["spec"]["description"] == "tries a queue nobody serves"
    assert page.inner_text("#experiment-header h1") == f"#{queued_run['id']} waits-renamed"
    assert [t.inner_text() for t in page.locator("#experiment-tags .tag").all()] == stored["tags"]
    assert page.inner_text("#experiment-notes") == stored["spec"]["description"]
    assert json.loads(page.text_content("#experiment-header details pre"))["description"] == stored["spec"]["description"]
