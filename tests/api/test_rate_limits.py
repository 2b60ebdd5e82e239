"""Requests per caller (``api.limits.rate``) and sign-in attempts (``api.limits.login``): each
caller gets its minute's allowance at once, then 429 with ``Retry-After`` and a message naming
the setting; the allowance comes back with time; callers, the health check and the dashboard's
files do not draw on one another's.  The clock is the buckets' own, moved on by the test."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import WEB_STATIC, create_app
from api.auth.principal import SESSION_COOKIE
from api.limits import buckets
from api.limits.buckets import Buckets
from core.settings import Settings
from store.repositories import web_sessions
from tests.api.conformance import attach
from tests.identity import PASSWORD, admin_token, bearer, make_user

API = "/api/v1"
RATE = 5  # requests a minute: Retry-After 12 s for the next one
LOGINS = 3  # sign-in attempts a minute


@pytest.fixture
def engine(postgresql_engine):
    return postgresql_engine  # the limits live in the api process: one database is enough


@pytest.fixture
def clock(monkeypatch):
    """The buckets' clock, moved on by ``clock.tick(seconds)``."""

    class Clock:
        at = 1000.0

        def tick(self, seconds: float) -> None:
            self.at += seconds

    fake = Clock()
    monkeypatch.setattr(buckets, "now", lambda: fake.at)
    return fake


@pytest.fixture
def app_with(settings, session_factory, enqueued):
    def make(**limits):
        return create_app(settings.model_copy(update=limits), session_factory=session_factory, enqueuer=enqueued,
                          reconcile_interval_s=0, broker_check=lambda: None)
    return make


@pytest.fixture
def limited(app_with, clock):
    return app_with(requests_per_minute=RATE, login_attempts_per_minute=LOGINS)


@pytest.fixture
def caller(limited, session_factory, openapi_document):
    """``caller(kind, address)``: a client of ``limited`` from ``address`` that sends a fresh
    token, a fresh dashboard session, or nothing."""

    def make(kind: str, address: str = "10.1.0.1") -> TestClient:
        headers, cookies = {}, {}
        if kind == "token":
            headers = bearer(admin_token(session_factory, f"admin-{secrets.token_hex(4)}"))
        elif kind == "session":
            with session_factory() as s:
                secret, _ = web_sessions.start(s, make_user(s, f"user-{secrets.token_hex(4)}"), timedelta(hours=1))
                s.commit()
            cookies = {SESSION_COOKIE: secret}
        client = TestClient(limited, headers=headers, cookies=cookies, client=(address, 50000))
        attach(client, openapi_document)
        return client

    return make


def _too_many(response, who: str, setting: str = "DESCENT_REQUESTS_PER_MINUTE") -> int:
    assert response.status_code == 429, response.text
    detail = response.json()["detail"]
    assert setting in detail and f"this {who}" in detail, detail
    return int(response.headers["retry-after"])


# caller kind -> (status of GET /me within the allowance, who the 429 names)
CALLERS = {"token": (200, "token"), "session": (200, "session"), "anonymous": (401, "address")}


@pytest.mark.parametrize("kind", sorted(CALLERS))
def test_a_caller_gets_its_minute_at_once_then_429_until_it_refills(caller, clock, kind):
    ok, who = CALLERS[kind]
    client = caller(kind)
    assert [client.get(f"{API}/me").status_code for _ in range(RATE)] == [ok] * RATE
    assert _too_many(client.get(f"{API}/me"), who) == 60 // RATE
    clock.tick(60 / RATE - 1)
    assert _too_many(client.get(f"{API}/me"), who) == 1  # a second to go
    clock.tick(1)
    assert client.get(f"{API}/me").status_code == ok
    assert client.get(f"{API}/me").status_code == 429


def test_callers_draw_on_their_own_buckets(caller):
    first = caller("token", "10.1.0.1")
    while first.get(f"{API}/me").status_code != 429:
        pass
    for other in (caller("token", "10.1.0.1"), caller("session", "10.1.0.1"), caller("anonymous", "10.1.0.2")):
        assert other.get(f"{API}/me").status_code in (200, 401)


def test_the_health_check_and_the_dashboard_files_are_not_counted(caller):
    client = caller("anonymous")
    for _ in range(3 * RATE):
        assert client.get(f"{API}/health").status_code == 200
        if WEB_STATIC.is_dir():
            assert client.get("/").status_code == 200
    assert [client.get(f"{API}/me").status_code for _ in range(RATE + 1)] == [401] * RATE + [429]


def test_made_up_tokens_count_against_their_address_and_a_known_token_goes_on(caller):
    known = caller("token", "10.1.0.7")
    assert known.get(f"{API}/me").status_code == 200  # its first request also drew on the address
    statuses = [caller("anonymous", "10.1.0.7").get(f"{API}/me", headers=bearer(f"dsc_{secrets.token_urlsafe(32)}"))
                .status_code for _ in range(RATE)]
    assert statuses == [401] * (RATE - 1) + [429]
    guessed = caller("anonymous", "10.1.0.7").get(f"{API}/me", headers=bearer(f"dsc_{secrets.token_urlsafe(32)}"))
    _too_many(guessed, "address")
    assert known.get(f"{API}/me").status_code == 200
    assert caller("anonymous", "10.1.0.8").get(f"{API}/me", headers=bearer("dsc_x")).status_code == 401


def test_a_page_loads_burst_passes_at_the_default_rate(app_with, session_factory, openapi_document):
    default = Settings.model_fields["requests_per_minute"].default
    app = app_with(requests_per_minute=default)
    client = TestClient(app, headers=bearer(admin_token(session_factory)))
    attach(client, openapi_document)
    page = ["/me", "/projects", "/experiments", "/datasets", "/splits", "/solvers", "/architectures", "/tokens"]
    statuses = {client.get(API + path).status_code for _ in range(15) for path in page}
    assert statuses == {200}


def test_the_document_declares_429_with_retry_after_on_every_counted_operation(openapi_document):
    for path, item in openapi_document.document["paths"].items():
        for method, operation in item.items():
            if path == f"{API}/health":
                assert "429" not in operation["responses"]
                continue
            assert "Retry-After" in operation["responses"]["429"]["headers"], (method, path)


def test_full_buckets_are_dropped_and_their_number_is_bounded():
    at = [0.0]
    kept = Buckets(2, 60.0, max_keys=3, clock=lambda: at[0])  # one take is refilled in 30 s
    for key in "abcde":
        assert kept.take(key) == 0
    assert len(kept) == 3
    at[0] = 29
    kept.take("f")
    assert len(kept) == 3  # d, e and f: none full again yet
    at[0] = 30
    kept.take("g")
    assert len(kept) == 2  # f and g


def test_a_take_from_several_buckets_is_all_or_nothing():
    at = [0.0]
    kept = Buckets(1, 60.0, clock=lambda: at[0])
    assert kept.take("b") == 0
    assert kept.take("a", "b") == pytest.approx(60.0)
    assert kept.take("a") == 0  # "a" gave nothing to the refused take


# sign-in attempts: (attempts made, the one after them, whose limit it meets)
LOGIN_CASES = {
    "one name from many addresses": ([("alice", f"10.2.0.{i}") for i in range(LOGINS)], ("alice", "10.2.1.1"),
                                     "user name"),
    "many names from one address": ([(f"nobody{i}", "10.2.0.9") for i in range(LOGINS)], ("alice", "10.2.0.9"),
                                    "address"),
    "many names from one IPv6 /64": ([(f"nobody{i}", f"2001:db8::{i + 1}") for i in range(LOGINS)],
                                     ("alice", "2001:db8::ff"), "address"),
}


@pytest.fixture
def alice(session_factory):
    with session_factory() as s:
        make_user(s, "alice")
        s.commit()


def _login(app, openapi_document, username: str, address: str, password: str = "a wrong password"):
    client = TestClient(app, client=(address, 50000))
    attach(client, openapi_document)
    return client.post(f"{API}/auth/login", json={"username": username, "password": password})


@pytest.mark.parametrize("case", sorted(LOGIN_CASES))
def test_sign_in_attempts_past_the_minutes_are_429_even_with_the_right_password(
        app_with, clock, alice, openapi_document, case):
    app = app_with(login_attempts_per_minute=LOGINS)
    made, (username, address), who = LOGIN_CASES[case]
    assert [_login(app, openapi_document, *attempt).status_code for attempt in made] == [401] * LOGINS
    refused = _login(app, openapi_document, username, address, PASSWORD)
    assert _too_many(refused, who, "DESCENT_LOGIN_ATTEMPTS_PER_MINUTE") == 60 // LOGINS
    assert "set-cookie" not in refused.headers
    clock.tick(60 / LOGINS)
    assert _login(app, openapi_document, username, address, PASSWORD).status_code == 200


def test_sign_in_below_the_limit_is_unaffected(app_with, clock, alice, openapi_document):
    app = app_with(login_attempts_per_minute=LOGINS)
    for _ in range(LOGINS - 1):
        assert _login(app, openapi_document, "alice", "10.3.0.1").status_code == 401
    assert _login(app, openapi_document, "alice", "10.3.0.1", PASSWORD).status_code == 200
    assert _login(app, openapi_document, "bob", "10.3.0.2").status_code == 401  # other names, other addresses


def test_sign_in_links_count_against_their_address(app_with, clock, openapi_document):
    app = app_with(login_attempts_per_minute=LOGINS)
    client = TestClient(app, client=("10.4.0.1", 50000))
    attach(client, openapi_document)
    for _ in range(LOGINS):
        assert client.get(f"{API}/auth/link", params={"code": "spent"}, follow_redirects=False).status_code == 303
    _too_many(client.get(f"{API}/auth/link", params={"code": "spent"}, follow_redirects=False), "address",
              "DESCENT_LOGIN_ATTEMPTS_PER_MINUTE")
