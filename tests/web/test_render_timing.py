"""How long the dashboard takes to draw a big list and a big comparison, measured in Chromium
with performance.now() from the route change to the first paint after the data is in the DOM
(web/static/app.js records it).  The numbers belong in docs/benchmarks.md ("Dashboard"); the
bound asserted here is only a generous guard against a regression by an order of magnitude.

Its own `descent up --no-worker`: 500 queued experiments must not be trained.  Its page signs in
with that instance's own one-time link."""

from __future__ import annotations

import math
import statistics
import time

import httpx
import pytest

from tests.web.harness import descent_up, open_view, shoot, sign_in_with_link

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LISTED = 500
COMPARED = 20
STEPS = 2000  # per compared run: far above max_points, so the api downsamples
EPOCHS = 20
REPEATS = 3
GENEROUS_S = 5.0


def points_for(run: int, steps: int, epochs: int) -> list[dict]:
    """A plausible run: a decaying noisy loss, a cosine schedule, epoch-end validation."""
    t0 = 1.7e9
    per_epoch = steps // epochs
    out = []
    for step in range(1, steps + 1):
        epoch = (step - 1) // per_epoch + 1
        wall = t0 + step * 0.01
        loss = 2.0 * math.exp(-step / (300 + 20 * (run % 10))) + 0.05 * math.sin(step * 0.7 + run) ** 2
        out += [
            {"name": "train/loss", "step": step, "epoch": epoch, "value": loss, "wall_time": wall},
            {"name": "lr", "step": step, "epoch": epoch, "value": 0.01 * 0.5 * (1 + math.cos(math.pi * step / steps)), "wall_time": wall},
            {"name": "grad_norm", "step": step, "epoch": epoch, "value": 1.0 / (1 + step / 500) + 0.1 * (step % 7), "wall_time": wall},
        ]
    for epoch in range(1, epochs + 1):
        step = epoch * per_epoch
        val = 1.8 * math.exp(-epoch / (4 + run % 5)) + 0.1
        out += [
            {"name": "val/loss", "step": step, "epoch": epoch, "value": val, "wall_time": t0 + step * 0.01},
            {"name": "val/accuracy", "step": step, "epoch": epoch, "value": 1 - val / 2, "wall_time": t0 + step * 0.01},
            {"name": "epoch_time", "step": step, "epoch": epoch, "value": per_epoch * 0.01, "wall_time": t0 + step * 0.01},
        ]
    return out


def created(response: httpx.Response) -> httpx.Response:
    assert response.status_code in (200, 201), response.text
    return response


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    # 500 queued at once: past the default quota of queued and running experiments per project
    with descent_up(tmp_path_factory.mktemp("descent-up-idle"), worker=False,
                    settings={"DESCENT_MAX_ACTIVE_EXPERIMENTS": str(LISTED + COMPARED)}) as up, \
            httpx.Client(base_url=f"{up.base}/api/v1", headers=up.auth, timeout=120) as api:
        split = api.post("/splits", json={"dataset": "iris"}).json()

        def create(i: int) -> int:
            spec = {"name": f"run-{i:03d}", "split_id": split["id"], "architecture": {"name": "mlp"},
                    "solver": {"name": ["adam", "sgd", "lion", "rmsprop"][i % 4], "base_lr": 10 ** -(1 + i % 4)},
                    "tags": [f"group-{i % 10}"]}
            return created(api.post("/experiments", json=spec)).json()["id"]

        started = time.perf_counter()
        ids = [create(i) for i in range(LISTED)]
        compared = ids[-COMPARED:]
        for i in ids:
            points = points_for(i, STEPS, EPOCHS) if i in compared else points_for(i, EPOCHS, EPOCHS)[-3 * EPOCHS:]
            created(api.post(f"/experiments/{i}/metrics", json={"points": points}))
        assert api.get("/experiments", params={"limit": 1}).json()["total"] == LISTED
        print(f"\npopulated {LISTED} experiments ({COMPARED} with {STEPS} steps) in {time.perf_counter() - started:.1f} s")
        yield up, compared


def measure(page, base: str, route: str, name: str) -> tuple[float, float]:
    """(render ms, api ms): the page's own timing, and the span of its api requests."""
    page.goto(f"{base}/#/datasets")  # a different page first, so every repeat is a real route change
    page.wait_for_selector("#view[data-rendered='datasets']")
    page.evaluate("performance.clearResourceTimings(); window.descentTimings.length = 0")
    open_view(page, base, route, name, timeout_ms=60_000)
    timing = page.evaluate("window.descentTimings[window.descentTimings.length - 1]")
    api_ms = page.evaluate("""() => {
        const calls = performance.getEntriesByType('resource').filter(e => e.name.includes('/api/v1/'));
        return calls.length ? Math.max(...calls.map(e => e.responseEnd)) - Math.min(...calls.map(e => e.startTime)) : 0;
    }""")
    assert timing["page"] == name
    return timing["ms"], api_ms


def test_render_times_for_500_listed_and_20_compared(blank_page, populated):
    up, compared = populated
    page, base = blank_page, up.base
    sign_in_with_link(page, up)
    cases = [
        (f"list of {LISTED} with best validation", f"#/experiments?limit={LISTED}", "experiments"),
        (f"compare {COMPARED} ({STEPS} steps each)", f"#/compare?ids={','.join(map(str, compared))}", "compare"),
        (f"one run ({STEPS} steps)", f"#/experiments/{compared[-1]}", "experiment"),
    ]
    rows = []
    for label, route, name in cases:
        samples = [measure(page, base, route, name) for _ in range(REPEATS)]
        render = [s[0] for s in samples]
        rows.append((label, statistics.median(render), max(render), statistics.median(s[1] for s in samples)))
        shoot(page, f"timing-{name}")
    assert page.locator("#experiments-table tbody tr").count() == 0  # the last page is the run page
    print(f"\n{'page':<40} {'median ms':>10} {'max ms':>8} {'api ms':>8}")
    for label, median, worst, api_ms in rows:
        print(f"{label:<40} {median:>10.0f} {worst:>8.0f} {api_ms:>8.0f}")
    for label, median, _, _ in rows:
        assert median < GENEROUS_S * 1000, f"{label}: {median:.0f} ms"
