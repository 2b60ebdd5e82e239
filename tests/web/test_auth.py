"""Signing in to the dashboard (web/static/login.js, api.js, app.js) and the API tokens page
(web/static/tokens.js), in Chromium against a real `descent up`: the password form, the
one-time link, the CSRF token every state-changing request must carry, a cross-site form
post refused, signing out, and a token created on the page that works until it is revoked."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.web.harness import ADMIN, ADMIN_PASSWORD, open_view, shoot, sign_in_with_password, submit

pytestmark = pytest.mark.browser

SESSION_COOKIE = "descent_session"
# not the dashboard's site: another IP address is another site, so SameSite=Strict applies
ATTACKER = "http://127.0.0.2:8765"


def session_cookie(tab) -> dict:
    return next(c for c in tab.context.cookies() if c["name"] == SESSION_COOKIE)


def status_of(tab, path: str) -> int:
    """The status the page's own fetch of `path` gets (with its cookie, as the page would)."""
    return tab.evaluate("async p => (await fetch(p)).status", path)


def test_an_unsigned_browser_sees_the_login_page_and_signs_in(blank_page, dashboard):
    page = blank_page
    page.goto(f"{dashboard}/")
    page.wait_for_selector("#view[data-rendered='login']")
    assert re.search(r"#/login\?next=%2Fexperiments$", page.url), page.url
    assert page.locator("nav").is_hidden() and page.locator("#account").is_hidden()
    assert status_of(page, "/api/v1/me") == 401
    shoot(page, "login-page")

    sign_in_with_password(page, "a wrong password")
    page.wait_for_selector("#login-error:has-text('Wrong username or password')")
    assert status_of(page, "/api/v1/me") == 401
    shoot(page, "login-wrong-password")

    page.fill("#login-form input[name=password]", ADMIN_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#view[data-rendered='experiments'] #experiments-table")
    assert page.url.endswith("#/experiments")
    assert page.inner_text("#signed-in-user") == ADMIN
    assert page.locator("nav").is_visible()
    cookie = session_cookie(page)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == "", "the session cookie must be out of the page's reach"
    assert status_of(page, "/api/v1/me") == 200
    shoot(page, "login-signed-in")


def test_signing_in_returns_to_the_page_asked_for(blank_page, dashboard):
    page = blank_page
    page.goto(f"{dashboard}/#/tokens")
    sign_in_with_password(page, ADMIN_PASSWORD)
    page.wait_for_selector("#view[data-rendered='tokens']")
    assert page.url.endswith("#/tokens")


def test_an_ended_session_sends_the_page_to_login_and_back(blank_page, dashboard):
    """Any call's 401 (here: the session ended elsewhere) goes to #/login, then back."""
    page = blank_page
    page.goto(f"{dashboard}/#/experiments")
    sign_in_with_password(page, ADMIN_PASSWORD)
    page.wait_for_selector("#view[data-rendered='experiments']")
    cookie = {SESSION_COOKIE: session_cookie(page)["value"]}
    csrf = httpx.get(f"{dashboard}/api/v1/me", cookies=cookie).json()["csrf_token"]
    ended = httpx.post(f"{dashboard}/api/v1/auth/logout", cookies=cookie, headers={"X-CSRF-Token": csrf})
    assert ended.status_code == 204
    page.evaluate("location.hash = '#/datasets'")
    page.wait_for_selector("#view[data-rendered='login']")
    assert page.url.endswith("#/login?next=%2Fdatasets")
    sign_in_with_password(page, ADMIN_PASSWORD)
    page.wait_for_selector("#view[data-rendered='datasets']")


def test_a_used_sign_in_link_says_so(blank_page, instance, signed_in):
    """`signed_in` used the link `descent up` printed: a second use lands on the login page."""
    page = blank_page
    page.goto(instance.login_link)
    page.wait_for_selector("#view[data-rendered='login']")
    assert page.url.endswith("#/login?error=link")
    notice = page.inner_text("#login-notice")
    assert "already used or has expired" in notice and "descent up" in notice and "password" in notice
    assert status_of(page, "/api/v1/me") == 401
    shoot(page, "login-link-spent")


def test_the_csrf_token_is_required_on_a_state_changing_request(page, dashboard, api):
    open_view(page, dashboard, "#/experiments", "experiments")
    before = len(api.get("/splits").json())
    answers = page.evaluate("""async () => {
        const body = JSON.stringify({dataset: "iris", strategy: "random", seed: 11});
        const post = (headers) => fetch("/api/v1/splits", {method: "POST", body,
                                                            headers: {"content-type": "application/json", ...headers}});
        const csrf = (await (await fetch("/api/v1/me")).json()).csrf_token;
        const without = await post({});
        const wrong = await post({"X-CSRF-Token": "not-the-token"});
        const right = await post({"X-CSRF-Token": csrf});
        return {without: without.status, detail: (await without.json()).detail, wrong: wrong.status,
                right: right.status, split: await right.json()};
    }""")
    assert answers["without"] == 403 and "X-CSRF-Token" in answers["detail"]
    assert answers["wrong"] == 403
    assert answers["right"] == 201
    assert len(api.get("/splits").json()) == before + 1  # only the request with the token made one
    assert api.get(f"/splits/{answers['split']['id']}").json()["seed"] == 11


def test_a_cross_site_form_post_does_not_cancel_a_run(page, dashboard, api, iris_split):
    """A page on another site, visited by the signed-in user, auto-submits a form to cancel a
    run: SameSite=Strict withholds the cookie (401), and the Origin check would refuse it too."""
    run = submit(api, {"name": "target of a cross-site post", "split_id": iris_split["id"],
                       "architecture": {"name": "mlp", "width": 16}, "solver": {"name": "adam"},
                       "training": {"epochs": 100_000, "batch_size": 8}})
    cancel = f"{dashboard}/api/v1/experiments/{run['id']}/cancel"
    try:
        open_view(page, dashboard, "#/experiments", "experiments")  # the user is signed in
        attack = (f'<!doctype html><title>You won</title><form id="f" method="post" enctype="text/plain" '
                  f'action="{cancel}"><input name=\'{{"a":"\' value=\'"}}\'></form>'
                  "<script>document.getElementById('f').submit()</script>")
        page.route(f"{ATTACKER}/**", lambda route: route.fulfill(status=200, content_type="text/html", body=attack))
        with page.expect_response(lambda r: r.url == cancel) as answer:
            page.goto(f"{ATTACKER}/prize.html")
        assert answer.value.request.method == "POST"
        assert answer.value.status == 401, answer.value.text()
        shoot(page, "cross-site-form-post")
        state = api.get(f"/experiments/{run['id']}").json()
        assert state["status"] in ("queued", "running") and not state["cancel_requested"], state

        # the same request with the cookie, the right CSRF token and the other site's Origin: 403
        cookie = {SESSION_COOKIE: session_cookie(page)["value"]}
        csrf = httpx.get(f"{dashboard}/api/v1/me", cookies=cookie).json()["csrf_token"]
        forged = httpx.post(cancel, cookies=cookie, headers={"X-CSRF-Token": csrf, "Origin": ATTACKER})
        assert forged.status_code == 403 and "cross-origin" in forged.json()["detail"]
        state = api.get(f"/experiments/{run['id']}").json()
        assert state["status"] in ("queued", "running") and not state["cancel_requested"], state
    finally:
        api.post(f"/experiments/{run['id']}/cancel")


def test_sign_out(blank_page, dashboard):
    """Own session (signed in with the password), so the shared one stays signed in."""
    page = blank_page
    page.goto(f"{dashboard}/")
    sign_in_with_password(page, ADMIN_PASSWORD)
    page.wait_for_selector("#view[data-rendered='experiments']")
    old = session_cookie(page)["value"]
    shoot(page, "signed-in-header")
    page.click("#sign-out")
    page.wait_for_selector("#view[data-rendered='login']")
    assert page.url.endswith("#/login")
    assert page.locator("#account").is_hidden()
    assert status_of(page, "/api/v1/me") == 401
    assert not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    # ended on the server too, not only forgotten by the browser
    assert httpx.get(f"{dashboard}/api/v1/me", cookies={SESSION_COOKIE: old}).status_code == 401
    page.evaluate("location.hash = '#/experiments'")
    page.wait_for_selector("#view[data-rendered='login']")
    shoot(page, "signed-out")


def test_a_token_made_on_the_tokens_page_works_until_revoked(page, dashboard, api):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dashboard)
    open_view(page, dashboard, "#/tokens", "tokens")
    page.fill("#create-token .field[data-field='name'] input", "from the tokens page")
    page.fill("#create-token .field[data-field='expires_in_days'] input", "7")
    page.click("#create-token button[type=submit]")
    secret = page.inner_text("#new-token-secret")
    assert secret.startswith("dsc_")
    assert "will not be shown again" in page.inner_text("#new-token")
    page.click("#copy-token")
    assert page.evaluate("navigator.clipboard.readText()") == secret

    me = httpx.get(f"{dashboard}/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json()["username"] == ADMIN
    listed = next(t for t in api.get("/tokens").json() if secret.startswith(t["prefix"]) and t["name"] == "from the tokens page")
    row = page.locator(f"#tokens-table tr[data-id='{listed['id']}']")
    row.wait_for()
    assert listed["prefix"] in row.inner_text() and row.get_attribute("data-state") == "live"
    assert row.locator("td").nth(3).inner_text() != "never"
    assert secret not in page.inner_text("#tokens-table")
    shoot(page, "tokens-created")
    page.reload()  # shown once: not on the page drawn again
    page.wait_for_selector("#view[data-rendered='tokens']")
    assert page.locator("#new-token-secret").count() == 0 and secret not in page.content()
    row.wait_for()

    page.once("dialog", lambda dialog: dialog.dismiss())
    row.locator("button.revoke").click()
    assert httpx.get(f"{dashboard}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button.revoke").click()
    page.wait_for_selector(f"#tokens-table tr[data-id='{listed['id']}'][data-state='revoked']")
    assert page.locator("#new-token-secret").count() == 0, "the revoked token's secret is no longer offered"
    assert httpx.get(f"{dashboard}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert api.get("/me").status_code == 200, "revoking one token must leave the others working"
    shoot(page, "tokens-revoked")
