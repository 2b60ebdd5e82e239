"""One experiment's page (web/static/experiment.js): a failed run's error text, cancel, and the
trained weights downloaded from it."""

from __future__ import annotations

import io

import pytest
import torch

from tests.web.harness import open_view, shoot, submit, wait_finished

pytestmark = pytest.mark.browser


def test_a_failed_run_shows_its_error(page, dashboard, api, iris_split):
    run = submit(api, {"name": "diverges", "split_id": iris_split["id"], "architecture": {"name": "mlp", "width": 16},
                       "solver": {"name": "sgd", "base_lr": 1e30}, "training": {"epochs": 4, "batch_size": 32}})
    finished = wait_finished(api, run["id"])
    assert finished["status"] == "failed" and finished["error"]
    open_view(page, dashboard, f"#/experiments/{run['id']}", "experiment")
    assert page.inner_text("#experiment-header .status").lower() == "failed"
    assert page.inner_text("#experiment-error") == finished["error"]
    assert page.inner_text("#run-state[data-state='failed']").startswith(
        f"Failed after {finished['step']} steps (epoch {finished['epoch']} of 4)")
    assert page.locator("#download").count() == 0, "a failed run has no weights to offer"
    shoot(page, "experiment-failed")


def test_cancel_a_long_run_from_its_page(page, dashboard, api, iris_split):
    run = submit(api, {"name": "long", "split_id": iris_split["id"], "architecture": {"name": "mlp", "width": 16},
                       "solver": {"name": "adam"}, "training": {"epochs": 100_000, "batch_size": 8}})
    open_view(page, dashboard, f"#/experiments/{run['id']}", "experiment")
    page.click("#cancel")
    page.wait_for_selector("#view[data-finished='1']", timeout=120_000)
    assert page.inner_text("#experiment-header .status").lower() == "cancelled"
    assert api.get(f"/experiments/{run['id']}").json()["status"] == "cancelled"
    assert page.locator("#cancel").count() == 0
    shoot(page, "experiment-cancelled")


def test_download_weights_of_a_finished_run(page, dashboard, api, finished_pair):
    run = finished_pair[0]
    open_view(page, dashboard, f"#/experiments/{run['id']}", "experiment")
    with page.expect_download() as download:
        page.click("#download")
    data = open(download.value.path(), "rb").read()
    assert data == api.get(f"/experiments/{run['id']}/checkpoint").content
    state = torch.load(io.BytesIO(data), weights_only=True)
    width = run["spec"]["architecture"]["width"]
    # an MLP on iris's 4 features: the first layer's weight is (width, 4)
    first = next(v for k, v in state.items() if k.endswith("weight"))
    assert tuple(first.shape) == (width, 4)


def test_an_early_stopped_run_says_why_and_offers_its_last_and_best_models(page, dashboard, api, iris_split):
    run = submit(api, {"name": "stops-early", "split_id": iris_split["id"], "architecture": {"name": "mlp", "width": 16},
                       "solver": {"name": "adam", "base_lr": 0.05},
                       "training": {"epochs": 200, "batch_size": 16,
                                    "early_stopping": {"metric": "val/loss", "patience": 2}}})
    finished = wait_finished(api, run["id"])
    assert finished["status"] == "succeeded" and finished["epoch"] < 200
    open_view(page, dashboard, f"#/experiments/{run['id']}", "experiment")
    assert page.inner_text("#experiment-stopped") == finished["stop_reason"]
    assert finished["stop_reason"].startswith(f"stopped early at epoch {finished['epoch']} of 200: val/loss")
    for button, which in (("#download-model", "last"), ("#download-best", "best")):
        with page.expect_download() as download:
            page.click(button)
        data = open(download.value.path(), "rb").read()
        assert data == api.get(f"/experiments/{run['id']}/model", params={"which": which}).content
        assert torch.export.load(io.BytesIO(data)).module()(torch.zeros(3, 4)).shape == (3, 3)
    shoot(page, "experiment-stopped-early")
