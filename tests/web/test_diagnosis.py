"""The convergence diagnosis in Chromium (web/static/diagnosis.js): a run built to diverge (SGD
with momentum at LR 5, full batches) shows the api's finding on its page, with its evidence and
suggestion, and in the compare table's diagnosis column; a run the rules pass shows as such."""

from __future__ import annotations

import pytest

from tests.web.harness import open_view, shoot, submit, wait_finished

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def runaway(api, iris_split) -> dict:
    run = submit(api, {"name": "runaway", "split_id": iris_split["id"], "architecture": {"name": "mlp", "width": 16},
                       "solver": {"name": "sgd", "base_lr": 5.0, "momentum": 0.9},
                       "training": {"epochs": 10, "batch_size": 256}})
    return wait_finished(api, run["id"])


def test_a_diverging_run_page_shows_the_finding_with_its_evidence(page, dashboard, api, runaway):
    findings = api.get(f"/experiments/{runaway['id']}/diagnosis").json()["findings"]
    assert "diverging" in [f["rule"] for f in findings], (runaway["status"], findings)
    open_view(page, dashboard, f"#/experiments/{runaway['id']}", "experiment")
    shown = page.locator("#run-diagnosis li.finding")
    assert [(shown.nth(i).get_attribute("data-rule"), int(shown.nth(i).get_attribute("data-epoch")))
            for i in range(shown.count())] == [(f["rule"], f["epoch"]) for f in findings]
    first = shown.first
    assert first.locator(".evidence").inner_text() == findings[0]["message"]
    assert first.locator(".suggestion").inner_text() == f"Try: {findings[0]['suggestion']}"
    shoot(page, "diagnosis-diverging-run")


def test_compare_names_each_runs_findings(page, dashboard, api, runaway, finished_pair):
    ids = [runaway["id"], finished_pair[0]["id"]]
    open_view(page, dashboard, f"#/compare?ids={','.join(map(str, ids))}", "compare")
    for eid in ids:
        diagnosis = api.get(f"/experiments/{eid}/diagnosis").json()
        cell = page.inner_text(f"#compare-summary tr[data-id='{eid}'] td[data-kind='diagnosis']")
        rules = [f"{f['rule']}@{f['epoch']}" for f in diagnosis["findings"]]
        assert cell == (", ".join(rules) or "ok")
    assert "diverging@" in page.inner_text(f"#compare-summary tr[data-id='{runaway['id']}']")


def test_a_run_no_rule_fires_on_says_so(page, dashboard, api, finished_pair):
    run = finished_pair[0]
    diagnosis = api.get(f"/experiments/{run['id']}/diagnosis").json()
    assert diagnosis["findings"] == [] and diagnosis["epochs"] == 4, "Adam on iris for 4 epochs passes the rules"
    open_view(page, dashboard, f"#/experiments/{run['id']}", "experiment")
    assert page.inner_text("#diagnosis-ok") == f"No problems seen in {diagnosis['epochs']} epochs."
