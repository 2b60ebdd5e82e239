"""The experiments list (web/static/experiments.js): status, progress, solver, base LR, best
validation value, and its filters."""

from __future__ import annotations

import pytest

from tests.web.harness import open_view, shoot

pytestmark = pytest.mark.browser


def shown_ids(page) -> set[int]:
    rows = page.locator("#experiments-table tbody tr")
    return {int(rows.nth(i).get_attribute("data-id")) for i in range(rows.count())}


def test_rows_show_status_solver_base_lr_and_best_validation(page, dashboard, api, finished_pair):
    open_view(page, dashboard, "#/experiments", "experiments")
    for run in finished_pair:
        row = page.locator(f"#experiments-table tr[data-id='{run['id']}']")
        cells = [row.locator("td").nth(i).inner_text() for i in range(8)]
        assert cells[3].lower() == "succeeded" and cells[4] == "100%"
        assert cells[5] == run["solver"] and float(cells[6]) == run["spec"]["solver"]["base_lr"]
        accuracy = api.get(f"/experiments/{run['id']}/metrics", params={"names": "val/accuracy"}).json()
        value, name = cells[7].split(" ")
        assert name == "val/accuracy"
        series = accuracy["series"]["val/accuracy"]
        pick = max if series["higher_is_better"] else min  # the direction as the api sends it
        assert float(value) == pytest.approx(pick(series["values"]), rel=1e-3)
        assert row.locator("td.best").get_attribute("data-higher-is-better") == str(series["higher_is_better"]).lower()
    shoot(page, "experiments-list")


def matching_ids(api, query: str) -> set[int]:
    """The experiments the api lists for the same filter: the page shows those.  Other tests of the
    session may add runs carrying the pair's tag (a clone keeps its original's tags)."""
    page = api.get(f"/experiments?{query}&limit=500").json()
    return {item["id"] for item in page["items"]}


# query, then which of the finished pair (adam, sgd) it shows and which it hides
@pytest.mark.parametrize(("query", "shows", "hides"), [
    ("tag=pair", (0, 1), ()),
    ("tag=pair&solver=sgd", (1,), (0,)),
    ("tag=pair&solver=adam", (0,), (1,)),
    ("tag=pair&status=failed", (), (0, 1)),
    ("tag=no-such-tag", (), (0, 1)),
])
def test_filters(page, dashboard, api, finished_pair, query, shows, hides):
    open_view(page, dashboard, f"#/experiments?{query}", "experiments")
    shown = shown_ids(page)
    assert {finished_pair[i]["id"] for i in shows} <= shown
    assert not {finished_pair[i]["id"] for i in hides} & shown
    assert shown == matching_ids(api, query)


def test_filter_controls_change_the_address(page, dashboard, api, finished_pair):
    open_view(page, dashboard, "#/experiments", "experiments")
    page.fill(".filters input[name=tag]", "pair")
    page.press(".filters input[name=tag]", "Enter")
    page.wait_for_function("location.hash.includes('tag=pair')")
    page.wait_for_selector("#view[data-rendered='experiments']")
    page.select_option(".filters select[name=solver]", "sgd")
    page.wait_for_function("location.hash.includes('solver=sgd')")
    page.wait_for_selector("#view[data-rendered='experiments']")
    shown = shown_ids(page)
    assert finished_pair[1]["id"] in shown and finished_pair[0]["id"] not in shown
    assert shown == matching_ids(api, "tag=pair&solver=sgd")
