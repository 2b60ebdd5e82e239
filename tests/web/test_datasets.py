"""Datasets and splits (web/static/datasets.js): upload a dataset, split it, and read each part's
class balance."""

from __future__ import annotations

import collections

import pytest

from tests.web.harness import open_view, shoot

pytestmark = pytest.mark.browser

# 3 classes of 20, 12 and 8 rows: counts a stratified split must keep in proportion
LABELS = ["setosa"] * 20 + ["versicolor"] * 12 + ["virginica"] * 8


def balance(locator) -> dict[str, int]:
    segments = locator.locator(".segment")
    return {segments.nth(i).get_attribute("data-class"): int(segments.nth(i).get_attribute("data-count"))
            for i in range(segments.count())}


def test_upload_then_split_shows_class_balance_per_part(page, dashboard, api, tmp_path):
    csv = tmp_path / "flowers.csv"
    csv.write_text("a,b,kind\n" + "".join(f"{i * 0.1:.1f},{(i % 7) * 0.3:.1f},{label}\n" for i, label in enumerate(LABELS)))
    open_view(page, dashboard, "#/datasets", "datasets")
    page.fill("#upload-dataset .field[data-field='name'] input", "flowers")
    page.fill("#upload-dataset .field[data-field='target'] input", "kind")
    page.set_input_files("#upload-dataset input[type=file]", str(csv))
    page.click("#upload-dataset button[type=submit]")
    page.wait_for_selector("#view[data-rendered='datasets'] #datasets-table td:text-is('upload')")
    uploaded = next(d for d in api.get("/datasets").json() if d["name"] == "flowers")
    row = page.locator(f"#datasets-table tr[data-id='{uploaded['id']}']")
    assert uploaded["n_samples"] == len(LABELS)
    shown = balance(row)
    assert sorted(shown.values(), reverse=True) == sorted(collections.Counter(LABELS).values(), reverse=True)
    assert sum(shown.values()) == len(LABELS)

    page.select_option("#create-split select[name=dataset]", str(uploaded["id"]))
    page.select_option("#create-split .field[data-field='strategy'] select", "stratified")
    page.fill("#create-split .field[data-field='fractions.train'] input", "0.5")
    page.fill("#create-split .field[data-field='fractions.val'] input", "0.25")
    page.fill("#create-split .field[data-field='fractions.test'] input", "0.25")
    known = {sp["id"] for sp in api.get("/splits").json()}  # other tests' splits share the dashboard
    page.click("#create-split button[type=submit]")
    page.wait_for_function(f"document.querySelectorAll('#splits .split').length > {len(known)}")
    split_id = max(int(c.get_attribute("data-id")) for c in page.locator("#splits .split").all())
    assert split_id not in known
    card = page.locator(f"#splits .split[data-id='{split_id}']")
    split = api.get(f"/splits/{split_id}").json()
    assert split["dataset"] == uploaded["id"] and split["fractions"] == {"train": 0.5, "val": 0.25, "test": 0.25}
    totals: collections.Counter = collections.Counter()
    for part, size in {"train": 20, "val": 10, "test": 10}.items():
        counts = balance(card.locator(f"tr[data-part='{part}']"))
        assert sum(counts.values()) == size == split["sizes"][part]
        assert counts == split["class_counts"][part]
        # stratified: each class in proportion to its share of the 40 rows
        assert sorted(counts.values(), reverse=True) == [round(n * size / len(LABELS)) for n in (20, 12, 8)]
        totals.update(counts)
    assert sorted(totals.values(), reverse=True) == [20, 12, 8]
    shoot(page, "datasets-split-balance")


@pytest.mark.parametrize(("fractions", "where"), [
    ({"train": "0.5", "val": "0.4", "test": "0.4"}, ".form-errors"),  # the sum rule names no one field
    ({"train": "0", "val": "0.5", "test": "0.5"}, ".field[data-field='fractions.train'] .field-error"),
])
def test_a_bad_split_shows_the_apis_error(page, dashboard, api, fractions, where):
    open_view(page, dashboard, "#/datasets", "datasets")
    for part, value in fractions.items():
        page.fill(f"#create-split .field[data-field='fractions.{part}'] input", value)
    page.click("#create-split button[type=submit]")
    shown = page.locator(f"#create-split {where}")
    shown.wait_for()
    direct = api.post("/splits", json={"dataset": "iris", "strategy": "stratified", "seed": 0,
                                        "fractions": {k: float(v) for k, v in fractions.items()}})
    assert direct.status_code == 422
    assert direct.json()["detail"][0]["msg"] in shown.inner_text()
