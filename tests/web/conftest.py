"""Browser tests: Debian's Chromium driven by Playwright against a real `descent up` (api and
worker as child processes on SQLite), with a screenshot of every page under
test-artifacts/screenshots/.  Helpers live in tests/web/harness.py.

Every api call needs an identity: `api` sends the admin's token that `descent up` saved, and
`page` is a tab signed in as the admin through the one-time link `descent up` printed (opened
once; each test's fresh context starts from that session's cookie).  `blank_page` is a tab
nobody signed in; `ADMIN_PASSWORD` is the admin's password, set with `descent user
set-password` before anything signed in (tests/web/harness.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.web.harness import (
    ADMIN_PASSWORD,
    CHROMIUM_ARGS,
    TINY_TRAINING,
    VIEWPORT,
    Up,
    chromium_executable,
    descent_up,
    shoot,
    sign_in_with_link,
    submit,
    wait_finished,
)


@pytest.fixture(scope="session")
def instance(tmp_path_factory) -> Iterator[Up]:
    with descent_up(tmp_path_factory.mktemp("descent-up")) as up:
        up.set_password(ADMIN_PASSWORD)
        yield up


@pytest.fixture(scope="session")
def dashboard(instance) -> str:
    return instance.base


@pytest.fixture(scope="session")
def api(instance) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{instance.base}/api/v1", headers=instance.auth, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def iris_split(api) -> dict:
    response = api.post("/splits", json={"dataset": "iris", "strategy": "stratified", "seed": 0})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="session")
def finished_pair(api, iris_split) -> list[dict]:
    """Two finished runs on the same split: Adam with a constant rate, SGD with momentum under a
    warmed-up cosine schedule."""
    base = {"split_id": iris_split["id"], "architecture": {"name": "mlp", "width": 16}, "training": TINY_TRAINING}
    runs = [
        submit(api, {**base, "name": "pair-adam", "tags": ["pair"], "solver": {"name": "adam", "base_lr": 0.01}}),
        submit(api, {**base, "name": "pair-sgd", "tags": ["pair"],
                     "solver": {"name": "sgd", "base_lr": 0.1, "momentum": 0.9},
                     "scheduler": {"name": "cosineannealinglr", "warmup_steps": 4}}),
    ]
    finished = [wait_finished(api, r["id"]) for r in runs]
    assert [r["status"] for r in finished] == ["succeeded", "succeeded"], [r["error"] for r in finished]
    return finished


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def signed_in(browser, instance) -> dict:
    """The browser state (the session cookie) of the admin signed in with `descent up`'s link."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        sign_in_with_link(context.new_page(), instance)
        return context.storage_state()
    finally:
        context.close()


def _tab(browser, request, storage_state=None):
    """A fresh context's page; fails the test on any uncaught script error and screenshots the last state."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True, storage_state=storage_state)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    yield tab
    shoot(tab, f"{request.node.name}-last")
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def page(browser, request, signed_in):
    """A page signed in as the admin (the shared session of `signed_in`)."""
    yield from _tab(browser, request, signed_in)


@pytest.fixture
def blank_page(browser, request):
    """A page nobody has signed in."""
    yield from _tab(browser, request)
