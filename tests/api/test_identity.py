"""Tokens, dashboard sessions, CSRF, host names and the audit log over HTTP, on real databases."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from core.auth import token_hash
from store.db import make_engine, make_sessionmaker
from store.migrate import upgrade
from store.models import ApiToken, AuditEvent, User, utcnow
from store.repositories import users, web_sessions
from tests.identity import PASSWORD, bearer, default_project_id, make_user, token_for
from tests.services import scratch_database

API = "/api/v1"


@pytest.fixture
def alice(session_factory):
    """A user (editor of the default project) and a token of theirs."""
    with session_factory() as s:
        user = make_user(s, "alice", roles={default_project_id(s): "editor"})
        token = token_for(s, user)
        s.commit()
        return user.id, token


def test_a_new_token_is_shown_once_and_stored_only_as_its_hash(client, connection):
    created = client.post(f"{API}/tokens", json={"name": "laptop", "expires_in_days": 30})
    assert created.status_code == 201
    secret = created.json()["token"]
    assert secret.startswith("dsc_") and len(secret) >= 4 + 43  # 256 random bits, url-safe
    row = connection.execute(select(ApiToken).where(ApiToken.id == created.json()["id"])).one()
    assert secret not in [str(v) for v in row]  # no column holds the secret
    assert row.hash == token_hash(secret) and row.prefix == secret[:12]
    listed = client.get(f"{API}/tokens").json()
    assert all("token" not in t for t in listed) and secret not in str(listed)
    assert TestClient(client.app, headers=bearer(secret)).get(f"{API}/me").json()["username"] == "admin"


def test_revoked_expired_unknown_and_malformed_tokens_are_401(client, alice, session_factory):
    user_id, token = alice
    me = TestClient(client.app, headers=bearer(token))
    assert me.get(f"{API}/me").status_code == 200
    for headers in ({"Authorization": "Bearer dsc_" + "x" * 43}, {"Authorization": "Basic YWxpY2U6cHc="},
                    {"Authorization": "Bearer"}, {"Authorization": token}):
        r = TestClient(client.app, headers=headers).get(f"{API}/me")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), headers
        assert set(r.json()) == {"detail"}
    with session_factory() as s:
        s.execute(update(ApiToken).where(ApiToken.hash == token_hash(token))
                  .values(expires_at=utcnow() - timedelta(seconds=1)))
        s.commit()
    assert me.get(f"{API}/me").status_code == 401
    with session_factory() as s:
        s.execute(update(ApiToken).where(ApiToken.hash == token_hash(token)).values(expires_at=None))
        s.commit()
    assert me.get(f"{API}/me").status_code == 200
    token_id = next(t["id"] for t in me.get(f"{API}/tokens").json())
    assert me.delete(f"{API}/tokens/{token_id}").status_code == 204
    r = me.get(f"{API}/me")
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


def test_a_disabled_users_tokens_stop_working(client, alice, session_factory):
    user_id, token = alice
    with session_factory() as s:
        s.execute(update(User).where(User.id == user_id).values(disabled=True))
        s.commit()
    assert TestClient(client.app, headers=bearer(token)).get(f"{API}/me").status_code == 401


def test_a_token_records_when_it_was_last_used(client, alice, connection):
    _, token = alice
    assert connection.execute(select(ApiToken.last_used_at).where(ApiToken.hash == token_hash(token))).scalar() is None
    TestClient(client.app, headers=bearer(token)).get(f"{API}/me")
    used = connection.execute(select(ApiToken.last_used_at).where(ApiToken.hash == token_hash(token))).scalar()
    assert used is not None and utcnow() - used < timedelta(minutes=1)


def test_a_user_cannot_see_or_revoke_someone_elses_token(client, alice):
    _, token = alice
    admins = client.post(f"{API}/tokens", json={"name": "admin's"}).json()
    alice_client = TestClient(client.app, headers=bearer(token))
    assert alice_client.delete(f"{API}/tokens/{admins['id']}").status_code == 404
    assert admins["id"] not in [t["id"] for t in alice_client.get(f"{API}/tokens").json()]
    assert alice_client.get(f"{API}/tokens", params={"all": "true"}).status_code == 403
    assert alice_client.post(f"{API}/tokens", json={"name": "w", "kind": "worker"}).status_code == 403
    assert admins["id"] in [t["id"] for t in client.get(f"{API}/tokens", params={"all": "true"}).json()]


def _signed_in(app, username="alice") -> tuple[TestClient, str]:
    browser = TestClient(app)
    r = browser.post(f"{API}/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    return browser, r.json()["csrf_token"]


def test_login_sets_a_session_whose_changes_need_the_csrf_token_and_same_origin(client, alice, iris_split):
    browser, csrf = _signed_in(client.app)
    assert browser.get(f"{API}/me").json()["username"] == "alice"
    body = {"dataset": "iris"}
    assert browser.post(f"{API}/splits", json=body).status_code == 403  # no CSRF token
    assert browser.post(f"{API}/splits", json=body, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    cross = {"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
    assert browser.post(f"{API}/splits", json=body, headers=cross).status_code == 403
    same = {"X-CSRF-Token": csrf, "Origin": "http://testserver"}
    assert browser.post(f"{API}/splits", json=body, headers=same).status_code == 201
    assert browser.post(f"{API}/auth/logout", headers=same).status_code == 204
    assert browser.get(f"{API}/me").status_code == 401


def test_a_cross_site_form_post_does_nothing(client, alice, iris_split):
    """A form on another site (text/plain or multipart, a "simple" request) carries the cookie
    only if the browser sends it; even then it has no CSRF token and the wrong Origin."""
    eid = client.post(f"{API}/experiments", json={"name": "x", "split_id": iris_split["id"],
                                                   "architecture": {"name": "linear"}, "solver": {"name": "sgd"}}
                      ).json()["id"]
    browser, _ = _signed_in(client.app)
    for kwargs in ({"content": b"a=b", "headers": {"content-type": "text/plain", "Origin": "https://evil.example"}},
                   {"files": {"f": ("x", b"y")}, "headers": {"Origin": "https://evil.example"}}):
        assert browser.post(f"{API}/experiments/{eid}/cancel", **kwargs).status_code == 403
    assert TestClient(client.app).post(f"{API}/experiments/{eid}/cancel", content=b"a=b").status_code == 401
    assert client.get(f"{API}/experiments/{eid}").json()["status"] == "queued"


def test_wrong_password_and_unknown_user_are_the_same_401(anonymous, alice):
    for body in ({"username": "alice", "password": "nope-nope"}, {"username": "mallory", "password": PASSWORD}):
        r = anonymous.post(f"{API}/auth/login", json=body)
        assert r.status_code == 401 and r.json() == {"detail": "wrong username or password"}
        assert "set-cookie" not in r.headers


def test_a_login_link_signs_in_once(client, alice, session_factory):
    with session_factory() as s:
        secret = web_sessions.new_login_link(s, s.get(User, alice[0]), timedelta(hours=1))
        s.commit()
    browser = TestClient(client.app)
    first = browser.get(f"{API}/auth/link", params={"code": secret}, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/"
    assert browser.get(f"{API}/me").json()["username"] == "alice"
    again = TestClient(client.app).get(f"{API}/auth/link", params={"code": secret}, follow_redirects=False)
    assert again.status_code == 303 and "error=link" in again.headers["location"]
    assert "set-cookie" not in again.headers


@pytest.mark.parametrize("host", ["attacker.example", "127.0.0.1.attacker.example", ""])
def test_a_host_name_not_allowed_is_refused(client, host):
    client = TestClient(client.app)  # the refusal comes before any operation (the document has none for it)
    r = client.get(f"{API}/health", headers={"Host": host})
    assert r.status_code == 400 and "DESCENT_ALLOWED_HOSTS" in r.json()["detail"]
    assert client.get(f"{API}/health", headers={"Host": "127.0.0.1:8000"}).status_code == 200


def test_anonymous_callers_learn_nothing(anonymous, iris_split):
    for path in ("/experiments", "/experiments/1", "/datasets", "/solvers", "/me", "/audit", "/compare?ids=1"):
        r = anonymous.get(API + path)
        assert r.status_code == 401 and set(r.json()) == {"detail"}, path
    health = anonymous.get(f"{API}/health").json()
    assert health["status"] == "ok" and health.get("database_error") is None


def test_changes_are_audited_with_who_and_what(client, iris_split, session_factory, alice):
    eid = client.post(f"{API}/experiments", json={"name": "x", "split_id": iris_split["id"],
                                                   "architecture": {"name": "linear"}, "solver": {"name": "sgd"}}
                      ).json()["id"]
    client.post(f"{API}/experiments/{eid}/cancel")
    client.delete(f"{API}/experiments/{eid}")
    events = client.get(f"{API}/audit").json()
    mine = [(e["actor"], e["action"]) for e in events if e["target"] == f"experiment {eid}"]
    assert mine == [("admin", "experiment.delete"), ("admin", "experiment.cancel"), ("admin", "experiment.create")]
    editor = TestClient(client.app, headers=bearer(alice[1]))
    assert editor.get(f"{API}/audit").json() == []  # an editor owns no project: sees no events
    with session_factory() as s:
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "split.create")) is not None


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_migration_moves_existing_rows_into_the_default_project(tmp_path, dialect):
    """Rows made before projects existed (revision 0001) land in ``default``; the first admin
    created afterwards owns it."""
    with ExitStack() as stack:
        url = (stack.enter_context(scratch_database(migrate=False)) if dialect == "postgresql"
               else f"sqlite:///{tmp_path / 'old.db'}")
        _migrate_old_rows(url)


def _migrate_old_rows(url: str) -> None:
    upgrade(url, "0001")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO splits (builtin, strategy, fractions, seed, train_indices, val_indices, "
                          "test_indices, summary, created_at) VALUES ('iris', 'random', '{}', 0, '[]', '[]', '[]', "
                          "'{}', '2026-01-01')"))
        conn.execute(text("INSERT INTO experiments (name, status, spec, solver, tags, split_id, queue, progress, "
                          "epoch, step, created_at, attempt, cancel_requested) VALUES ('old', 'succeeded', '{}', "
                          "'sgd', '[]', (SELECT id FROM splits), 'cpu', 1.0, 0, 0, '2026-01-01', 1, FALSE)"))
    upgrade(url)
    with engine.connect() as conn:
        default = conn.execute(text("SELECT id FROM projects WHERE name = 'default'")).scalar_one()
        assert conn.execute(text("SELECT project_id FROM splits")).scalar_one() == default
        assert conn.execute(text("SELECT project_id FROM experiments")).scalar_one() == default
    with make_sessionmaker(engine)() as s:
        users.create(s, "root", PASSWORD, is_admin=True)
        users.create(s, "second", PASSWORD, is_admin=True)
        s.commit()
    with engine.connect() as conn:
        owners = conn.execute(text("SELECT u.username FROM memberships m JOIN users u ON u.id = m.user_id "
                                   "WHERE m.project_id = :p AND m.role = 'owner'"), {"p": default}).scalars().all()
    assert owners == ["root"]
    engine.dispose()


def test_a_write_request_records_the_tokens_use_on_a_real_sqlite_file(tmp_path):
    """The use is recorded after the response, not beside the request's own write transaction
    (on SQLite that second writer waited out the busy timeout and failed)."""
    from api.app import create_app
    from core.settings import Settings
    from tests.identity import TEST_HOSTS, admin_token

    settings = Settings(data_dir=tmp_path, allowed_hosts=TEST_HOSTS)
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        token = admin_token(make_sessionmaker(engine))
        app = create_app(settings, enqueuer=lambda *a: None, reconcile_interval_s=0, broker_check=lambda: None)
        with TestClient(app, headers=bearer(token)) as c:
            assert c.post(f"{API}/splits", json={"dataset": "iris"}).status_code == 201
        with engine.connect() as conn:
            used = conn.execute(select(ApiToken.last_used_at).where(ApiToken.hash == token_hash(token))).scalar()
        assert used is not None
    finally:
        engine.dispose()


def test_expired_sessions_and_spent_links_do_not_pile_up(client, alice, session_factory):
    from store.models import LoginLink, WebSession

    browser, _ = _signed_in(client.app)
    with session_factory() as s:
        user = s.get(User, alice[0])
        s.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        first = web_sessions.new_login_link(s, user, timedelta(hours=1))
        assert web_sessions.use_login_link(s, first) is not None
        s.commit()
    _signed_in(client.app)
    with session_factory() as s:
        web_sessions.new_login_link(s, s.get(User, alice[0]), timedelta(hours=1))
        s.commit()
        live = s.scalars(select(WebSession).where(WebSession.user_id == alice[0])).all()
        links = s.scalars(select(LoginLink).where(LoginLink.user_id == alice[0])).all()
    assert [w.expires_at > utcnow() for w in live] == [True]  # the expired one is gone
    assert [link.used_at for link in links] == [None]  # the spent link is gone
