"""The header's project switcher (web/static/app.js, session.js): the experiments list, the
datasets and splits page and the new-experiment split picker show the chosen project's objects,
what the page uploads or splits goes into it, and the choice survives a reload."""

from __future__ import annotations

import uuid

import pytest

from tests.web.harness import TINY_TRAINING, open_view, shoot, submit

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def project(api) -> dict:
    response = api.post("/projects", json={"name": f"web {uuid.uuid4().hex[:8]}", "description": "switcher test"})
    assert response.status_code == 201, response.text
    return response.json()


def choose(page, project_id: int | None, name: str) -> None:
    """Pick a project in the header (re-renders the page) and wait for the page to draw."""
    page.select_option("#project-switcher", "" if project_id is None else str(project_id))
    page.wait_for_selector(f"#view[data-rendered='{name}']")


def shown(page, selector: str) -> set[int]:
    return {int(el.get_attribute("data-id")) for el in page.locator(selector).all()}


def test_the_switcher_filters_the_pages_and_files_new_objects_under_the_project(page, dashboard, api, project,
                                                                              iris_split, tmp_path):
    split = api.post("/splits", json={"dataset": "wine", "strategy": "stratified", "seed": 3,
                                      "project_id": project["id"]}).json()
    assert split["project_id"] == project["id"] != iris_split["project_id"]
    spec = {"architecture": {"name": "mlp", "width": 16}, "solver": {"name": "adam"}, "training": TINY_TRAINING}
    ours = submit(api, {**spec, "name": "in the project", "split_id": split["id"]})
    other = submit(api, {**spec, "name": "in the default project", "split_id": iris_split["id"]})
    for run in (ours, other):
        api.post(f"/experiments/{run['id']}/cancel")  # only where they are listed matters

    open_view(page, dashboard, "#/experiments", "experiments")
    options = page.locator("#project-switcher option").all_inner_texts()
    assert options[0] == "All projects" and f"{project['name']} (owner)" in options
    assert {ours["id"], other["id"]} <= shown(page, "#experiments-table tbody tr")
    choose(page, project["id"], "experiments")
    assert shown(page, "#experiments-table tbody tr") == {ours["id"]}
    shoot(page, "project-experiments")

    page.reload()  # the choice is kept (localStorage)
    page.wait_for_selector("#view[data-rendered='experiments']")
    assert page.input_value("#project-switcher") == str(project["id"])
    assert shown(page, "#experiments-table tbody tr") == {ours["id"]}

    open_view(page, dashboard, "#/datasets", "datasets")
    assert shown(page, "#splits .split") == {split["id"]}
    csv = tmp_path / "tiny.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{'xy'[i % 2]}\n" for i in range(30)))
    page.fill("#upload-dataset .field[data-field='name'] input", "tiny in a project")
    page.fill("#upload-dataset .field[data-field='target'] input", "label")
    page.set_input_files("#upload-dataset input[type=file]", str(csv))
    page.click("#upload-dataset button[type=submit]")
    page.wait_for_selector("#view[data-rendered='datasets'] #datasets-table td:text-is('upload')")
    uploaded = next(d for d in api.get("/datasets", params={"project_id": project["id"]}).json() if d["source"] == "upload")
    assert uploaded["name"] == "tiny in a project" and uploaded["project_id"] == project["id"]
    assert page.locator(f"#datasets-table tr[data-id='{uploaded['id']}']").count() == 1

    page.select_option("#create-split select[name=dataset]", "iris")
    page.click("#create-split button[type=submit]")
    page.wait_for_function("document.querySelectorAll('#splits .split').length === 2")
    made = max(shown(page, "#splits .split"))
    assert api.get(f"/splits/{made}").json()["project_id"] == project["id"]
    shoot(page, "project-datasets")

    open_view(page, dashboard, "#/new", "new")
    picker = {int(v) for v in page.eval_on_selector_all("#new-experiment select[name=split_id] option", "os => os.map(o => o.value)")}
    assert picker == {split["id"], made}

    choose(page, None, "new")
    picker = {int(v) for v in page.eval_on_selector_all("#new-experiment select[name=split_id] option", "os => os.map(o => o.value)")}
    assert {split["id"], made, iris_split["id"]} <= picker
    open_view(page, dashboard, "#/experiments", "experiments")
    assert {ours["id"], other["id"]} <= shown(page, "#experiments-table tbody tr")
