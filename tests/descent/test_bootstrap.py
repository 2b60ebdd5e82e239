"""What ``descent up`` runs before serving (``descent user bootstrap-local``), on a real
database (a migrated SQLite file, and PostgreSQL): the admin on a new instance, a working token
in the data folder and in the token file for each address, and a one-time sign-in link on every
start; a token that stopped working is replaced, one that works is kept."""

from __future__ import annotations

import json
import stat

import pytest
from sqlalchemy import func, select

from descent import cli, credentials
from store.db import make_engine, make_sessionmaker, session_scope
from store.models import ApiToken, User
from store.repositories import tokens as tokens_repo
from store.repositories import users as users_repo
from store.repositories import web_sessions
from tests.identity import make_user, token_for

URLS = ["http://127.0.0.1:8123", "http://localhost:8123"]


@pytest.fixture
def boot(database_url, tmp_path, capsys):
    """Run the bootstrap as ``descent up`` does; returns (its JSON answer, its notes)."""
    data = tmp_path / "data"
    data.mkdir()

    def run() -> tuple[dict, str]:
        url_args = [a for url in URLS for a in ("--url", url)]
        assert cli.main(["user", "bootstrap-local", "--data-dir", str(data), *url_args,
                         "--database-url", database_url]) == 0
        out = capsys.readouterr()
        return json.loads(out.out), out.err

    run.data = data
    return run


@pytest.fixture
def factory(database_url):
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def saved(data) -> dict[str, str]:
    """What the admin's token is in each place: the data folder's file, then each address."""
    return {"admin.token": (data / "admin.token").read_text().strip(),
            **{url: credentials.saved_token(url) for url in URLS}}


def count(factory, model) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_a_new_instance_gets_an_admin_a_token_and_a_link(boot, factory):
    answer, notes = boot()
    assert answer["admin_created"] is True and answer["user"] == "admin"
    assert "created the admin user `admin`" in notes and "descent user set-password admin" in notes
    with factory() as session:
        admin = users_repo.by_username(session, "admin")
        assert admin.is_admin and not admin.disabled
    tokens = saved(boot.data)
    assert len(set(tokens.values())) == 1  # one token, in every place
    secret = tokens["admin.token"]
    with factory() as session:
        token, user = tokens_repo.find_valid(session, secret)
        assert (user.username, token.name) == ("admin", "descent up")
    for path in (boot.data / "admin.token", credentials.tokens_path()):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    link = answer["login_link"]
    prefix = f"{URLS[0]}/api/v1/auth/link?code="
    assert link.startswith(prefix)
    with session_scope(factory) as session:
        assert web_sessions.use_login_link(session, link[len(prefix):]).username == "admin"
    with session_scope(factory) as session:
        assert web_sessions.use_login_link(session, link[len(prefix):]) is None  # once only


def test_a_restart_keeps_a_working_token_and_makes_a_new_link(boot, factory):
    first, _ = boot()
    before = saved(boot.data)
    second, notes = boot()
    assert second["admin_created"] is False and second["tokens_written"] == [] and notes == ""
    assert saved(boot.data) == before
    assert count(factory, User) == 1 and count(factory, ApiToken) == 1
    assert second["login_link"] != first["login_link"]


@pytest.mark.parametrize("lost", ["revoked", "data folder reset", "token files deleted"])
def test_a_token_that_stopped_working_is_replaced(boot, factory, lost):
    boot()
    old = saved(boot.data)["admin.token"]
    if lost == "revoked":
        with session_scope(factory) as session:
            tokens_repo.revoke(session, tokens_repo.find_valid(session, old)[0])
    elif lost == "data folder reset":  # an older instance's token, unknown to this database
        (boot.data / "admin.token").write_text("dsc_" + "x" * 43 + "\n")
        for url in URLS:
            credentials.save_token(url, "dsc_" + "y" * 43)
    else:
        (boot.data / "admin.token").unlink()
        credentials.tokens_path().unlink()
    answer, notes = boot()
    now = saved(boot.data)
    assert len(set(now.values())) == 1 and now["admin.token"] != old
    assert "saved an API token" in notes and answer["tokens_written"]
    with factory() as session:
        assert tokens_repo.find_valid(session, now["admin.token"]) is not None


def test_a_token_file_entry_that_works_is_kept_even_another_users(boot, factory):
    boot()
    with session_scope(factory) as session:
        alices = token_for(session, make_user(session, "alice"))
    credentials.save_token(URLS[0], alices)  # alice ran `descent login` against this up
    credentials.forget_token(URLS[1])
    answer, _ = boot()
    now = saved(boot.data)
    assert now[URLS[0]] == alices
    assert now[URLS[1]] == now["admin.token"] != alices  # the data folder's token fills the gap
    assert count(factory, ApiToken) == 2  # no new token: the data folder's still worked


def test_an_instance_without_an_enabled_admin_gets_no_token_and_no_link(boot, factory):
    with session_scope(factory) as session:
        users_repo.set_disabled(session, make_user(session, "root", is_admin=True), True)
        make_user(session, "alice")
    answer, notes = boot()
    assert answer == {"user": None, "admin_created": False, "tokens_written": [], "login_link": None}
    assert "no enabled admin" in notes
    assert not (boot.data / "admin.token").exists() and credentials.load_tokens() == {}
