"""What the dashboard renders from the catalog, checked against the catalog the api serves: every
solver field starts at its catalog default and carries its bounds; and every page loads from
the api's own origin only (the charting library is vendored, nothing comes from a CDN)."""

from __future__ import annotations

import math

import pytest

from tests.web.harness import open_view

pytestmark = pytest.mark.browser

SOLVERS = ["adam", "sgd", "rmsprop", "lion", "lamb", "kfac", "lbfgs", "rprop"]


def _inputs(tab, path: str):
    return tab.locator(f".field[data-field='{path}'] input")


def _number(text: str) -> float:
    return float(text) if text not in ("", None) else math.nan


@pytest.mark.parametrize("solver", SOLVERS)
def test_solver_fields_start_at_their_catalog_defaults_with_their_bounds(page, dashboard, api, solver):
    entry = next(s for s in api.get("/solvers").json() if s["name"] == solver)
    properties = entry["experiment_fields"]["properties"]  # the names an experiment body uses
    assert "base_lr" in properties and "weight_decay" in properties
    open_view(page, dashboard, "#/new", "new")
    page.select_option("select[name=solver-name]", solver)
    checked = 0
    for name, schema in properties.items():
        if schema.get("type") not in ("number", "integer", "array") or schema.get("default") is None:
            continue
        path = f"solver.{name}"
        inputs = _inputs(page, path)
        defaults = schema["default"] if schema["type"] == "array" else [schema["default"]]
        bounds = schema.get("items", {}) if schema["type"] == "array" else schema
        if schema["type"] == "array" and inputs.count() != len(defaults):
            continue  # a free-length list is one text input; tuples get one number input each
        assert inputs.count() == len(defaults), path
        for i, default in enumerate(defaults):
            box = inputs.nth(i)
            assert _number(box.input_value()) == pytest.approx(default), (path, i)
            low = bounds.get("minimum", bounds.get("exclusiveMinimum"))
            if low is not None:
                assert _number(box.get_attribute("min")) == pytest.approx(low), (path, "min")
            high = bounds.get("maximum", bounds.get("exclusiveMaximum"))
            if high is not None:
                assert _number(box.get_attribute("max")) == pytest.approx(high), (path, "max")
            checked += 1
    assert checked >= 2, f"{solver}: no numeric field was checked"


def test_every_page_loads_from_its_own_origin_only(page, dashboard, finished_pair):
    """Every request a page makes goes to the api that served it: no CDN, no font service."""
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    a, b = (r["id"] for r in finished_pair)
    for route, name in [("#/experiments", "experiments"), ("#/new", "new"), ("#/datasets", "datasets"),
                        (f"#/experiments/{a}", "experiment"), (f"#/compare?ids={a},{b}", "compare")]:
        open_view(page, dashboard, route, name)
    assert requested, "the pages made no request at all"
    foreign = sorted({u for u in requested if not u.startswith(dashboard)})
    assert not foreign, f"requests outside {dashboard}: {foreign}"
    assert any(u.endswith(".js") and "vendor" in u for u in requested), "the vendored chart library was not loaded"
