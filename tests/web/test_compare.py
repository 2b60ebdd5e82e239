"""Compare (web/static/compare.js): select two runs in the list and compare them; the overlaid
metric by step, epoch and training time, log scale, smoothing, the learning-rate schedules and
the table of best and final values with each metric's winner."""

from __future__ import annotations

import itertools
import json
import math
import re

import pytest

from tests.web.harness import TINY_TRAINING, chart_data, open_view, shoot

pytestmark = pytest.mark.browser


def raw_series(api, experiment_id: int) -> dict:
    """Every point as recorded (these runs are far below the downsampling threshold)."""
    return api.get(f"/experiments/{experiment_id}/metrics", params={"max_points": 100_000}).json()["series"]


def ema_debiased(values: list[float], weight: float) -> list[float]:
    out, s = [], 0.0
    for n, v in enumerate(values, start=1):
        s = weight * s + (1 - weight) * v
        out.append(s / (1 - weight**n))
    return out


def drawn_line(drawn: dict, label: str) -> list[tuple[float, float]]:
    ys = drawn["ys"][drawn["labels"].index(label)]
    return [(x, y) for x, y in zip(drawn["xs"], ys) if y is not None]


def label(run: dict) -> str:
    return f"#{run['id']} {run['name']}"


@pytest.fixture
def compared(page, dashboard, finished_pair):
    """The compare page reached the way a user does: tick two rows, press Compare."""
    open_view(page, dashboard, "#/experiments?tag=pair", "experiments")
    for run in finished_pair:
        page.check(f"#experiments-table tr[data-id='{run['id']}'] input[type=checkbox]")
    shoot(page, "experiments-two-selected")
    page.click("text=Compare selected")
    page.wait_for_selector("#view[data-rendered='compare']")
    return page


def select_control(page, name: str, value: str) -> None:
    page.select_option(f"#compare-controls select[name='{name}']", value)


def test_selecting_two_runs_overlays_their_validation_loss(compared, api, finished_pair):
    ids = sorted(int(i) for i in re.search(r"ids=([\d,]+)", compared.url).group(1).split(","))
    assert ids == sorted(r["id"] for r in finished_pair)
    drawn = chart_data(compared, "#compare-chart")
    assert drawn["title"] == "val/loss" and sorted(drawn["labels"]) == sorted(label(r) for r in finished_pair)
    for run in finished_pair:
        recorded = raw_series(api, run["id"])["val/loss"]
        assert drawn_line(drawn, label(run)) == list(zip(recorded["steps"], recorded["values"]))
    shoot(compared, "compare-two")


def test_epoch_and_training_time_axes(compared, api, finished_pair):
    select_control(compared, "x", "epoch")
    drawn = chart_data(compared, "#compare-chart")
    assert drawn["xLabel"] == "epoch"
    for run in finished_pair:  # validation runs once per epoch, at its end
        assert [x for x, _ in drawn_line(drawn, label(run))] == list(range(1, TINY_TRAINING["epochs"] + 1))
    select_control(compared, "metric", "train/loss")
    drawn = chart_data(compared, "#compare-chart")
    per_epoch = math.ceil(105 / TINY_TRAINING["batch_size"])
    assert [x for x, _ in drawn_line(drawn, label(finished_pair[0]))] == pytest.approx(
        [s / per_epoch for s in range(1, TINY_TRAINING["epochs"] * per_epoch + 1)])

    select_control(compared, "x", "wall")
    drawn = chart_data(compared, "#compare-chart")
    for run in finished_pair:
        epoch_times = raw_series(api, run["id"])["epoch_time"]["values"]
        ends = list(itertools.accumulate(epoch_times))
        xs = [x for x, _ in drawn_line(drawn, label(run))]
        # each epoch's last step sits at the running sum of the epoch times
        assert xs[per_epoch - 1::per_epoch] == pytest.approx(ends)
        assert xs == sorted(xs)
    shoot(compared, "compare-training-time")


def test_log_scale_and_smoothing(compared, api, finished_pair):
    select_control(compared, "metric", "train/loss")
    compared.check("#compare-controls input[name=log]")
    assert chart_data(compared, "#compare-chart")["distr"] == 3  # uPlot's log distribution
    compared.eval_on_selector("#compare-controls input[name=smooth]",
                              "el => { el.value = '0.6'; el.dispatchEvent(new Event('input', {bubbles: true})); }")
    drawn = chart_data(compared, "#compare-chart")
    for run in finished_pair:
        recorded = raw_series(api, run["id"])["train/loss"]["values"]
        assert [y for _, y in drawn_line(drawn, label(run))] == pytest.approx(ema_debiased(recorded, 0.6), rel=1e-9)
    assert "smooth=0.6" in compared.url and "log=1" in compared.url, "the view is kept in the address"
    shoot(compared, "compare-log-smoothed")


def test_learning_rate_schedules_side_by_side(compared, api, finished_pair):
    adam, sgd = finished_pair
    boxes = compared.locator("#compare-lr .chart")
    assert boxes.count() == 2
    adam_lr = drawn_line(chart_data(compared, f"#compare-lr .chart[data-id='{adam['id']}']"), label(adam))
    assert all(y == pytest.approx(0.01) for _, y in adam_lr)
    sgd_lr = drawn_line(chart_data(compared, f"#compare-lr .chart[data-id='{sgd['id']}']"), label(sgd))
    recorded = raw_series(api, sgd["id"])["lr"]
    assert sgd_lr == list(zip(recorded["steps"], recorded["values"]))
    # warm-up: the first 4 steps climb linearly towards base LR, then the cosine decays
    ys = [y for _, y in sgd_lr]
    assert ys[:4] == sorted(ys[:4]) and ys[4:] == sorted(ys[4:], reverse=True)


@pytest.mark.parametrize("metric", ["val/loss", "val/accuracy", "train/loss", "test/accuracy"])
def test_summary_table_best_final_and_winner(compared, api, finished_pair, metric):
    directions = {raw_series(api, run["id"])[metric]["higher_is_better"] for run in finished_pair}
    assert len(directions) == 1
    (higher,) = directions  # the api's direction for the metric; the page must follow it
    best = {}
    for run in finished_pair:
        values = raw_series(api, run["id"])[metric]["values"]
        best[run["id"]] = max(values) if higher else min(values)
        row = compared.locator(f"#compare-summary tr[data-id='{run['id']}']")
        shown_best = float(row.locator(f"td[data-metric='{metric}'][data-kind='best']").inner_text().rstrip(" ★"))
        shown_final = float(row.locator(f"td[data-metric='{metric}'][data-kind='final']").inner_text())
        assert shown_best == pytest.approx(best[run["id"]], rel=1e-3, abs=1e-12)
        assert shown_final == pytest.approx(values[-1], rel=1e-3, abs=1e-12)
    top = max(best.values()) if higher else min(best.values())
    header = compared.locator("#compare-summary thead th", has_text=metric).first.inner_text()
    assert header.endswith("↑" if higher else "↓")
    starred = compared.locator(f"#compare-summary td.winner[data-metric='{metric}']")
    assert sorted(starred.nth(i).locator("xpath=..").get_attribute("data-id") for i in range(starred.count())) == \
        sorted(str(i) for i, v in best.items() if v == top), "every run with the best value, and only those"
    ranked = sorted(best, key=best.get, reverse=higher)
    if metric == "val/loss" and best[ranked[0]] != best[ranked[1]]:
        assert compared.inner_text("#compare-winner").endswith(f"#{ranked[0]} "
                                                                 f"{next(r['name'] for r in finished_pair if r['id'] == ranked[0])} ★")


def test_more_metrics_each_in_a_chart_of_its_own(compared, api, finished_pair):
    for metric in ("train/loss", "val/accuracy"):
        compared.check(f"#compare-more input[value='{metric}']")
    charts = compared.locator("#compare-extra .chart")
    assert [charts.nth(i).get_attribute("data-metric") for i in range(charts.count())] == ["train/loss", "val/accuracy"]
    for metric in ("train/loss", "val/accuracy"):
        drawn = chart_data(compared, f"#compare-extra .chart[data-metric='{metric}']")
        assert drawn["title"] == metric
        for run in finished_pair:
            recorded = raw_series(api, run["id"])[metric]
            assert drawn_line(drawn, label(run)) == list(zip(recorded["steps"], recorded["values"]))
    assert chart_data(compared, "#compare-chart")["title"] == "val/loss", "the main chart keeps its metric"
    assert "more=train%2Floss%2Cval%2Faccuracy" in compared.url, "the view is kept in the address"
    compared.uncheck("#compare-more input[value='train/loss']")
    assert compared.locator("#compare-extra .chart").count() == 1
    shoot(compared, "compare-more-metrics")


def flatten(spec: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in spec.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_what_differs_between_the_specs(compared, api, finished_pair):
    flat = [flatten(api.get(f"/experiments/{run['id']}").json()["spec"]) for run in finished_pair]
    missing = object()
    differing = sorted(k for k in set(flat[0]) | set(flat[1]) if flat[0].get(k, missing) != flat[1].get(k, missing))
    assert "solver.name" in differing and "split_id" not in differing
    rows = compared.locator("#spec-diff tbody tr")
    assert [rows.nth(i).get_attribute("data-key") for i in range(rows.count())] == differing
    for key in differing:
        for run, spec in zip(finished_pair, flat):
            cell = compared.inner_text(f"#spec-diff tr[data-key='{key}'] td[data-id='{run['id']}']")
            assert (json.loads(cell) if cell != "–" else missing) == spec.get(key, missing)
    shoot(compared, "compare-spec-diff")
