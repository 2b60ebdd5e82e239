"""``descent user`` on a real database (a migrated SQLite file, and PostgreSQL), through the real
``descent`` parser: passwords stored only as Argon2 hashes, one-line refusals (exit 1), disabling
ending sessions and stopping tokens, and every change in the audit log as done by ``cli``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.auth import verify_password
from descent import cli
from descent.commands import database
from store.db import make_engine, make_sessionmaker, session_scope
from store.migrate import upgrade
from store.models import AuditEvent, User, WebSession
from store.repositories import tokens as tokens_repo
from store.repositories import users as users_repo
from store.repositories import web_sessions

PASSWORD = "correct horse battery"
OTHER = "another good password"


@pytest.fixture
def db(database_url):
    """(run ``descent ARGS --database-url URL``, a session factory on that database)."""
    engine = make_engine(database_url)
    factory = make_sessionmaker(engine)

    def descent(*args: str) -> int:
        return cli.main([*args, "--database-url", database_url])

    yield descent, factory
    engine.dispose()


@pytest.fixture
def prompts(monkeypatch):
    """What the hidden password prompt will be answered, in order."""
    answers: list[str] = []
    monkeypatch.setattr(database.getpass, "getpass", lambda prompt="": answers.pop(0))
    return answers


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def users(factory) -> dict[str, User]:
    with factory() as session:
        return {u.username: u for u in users_repo.list_all(session)}


@pytest.mark.parametrize(
    "argv, env, answers, code, error",
    [
        (["alice", "--admin", "--password-env", "PW"], {"PW": PASSWORD}, [], 0, None),
        (["alice"], {}, [PASSWORD, PASSWORD], 0, None),
        (["alice"], {}, [PASSWORD, OTHER], 1, "the two passwords differ"),
        (["alice", "--password-env", "PW"], {}, [], 1, "$PW is not set or empty"),
        (["alice", "--password-env", "PW"], {"PW": "short"}, [], 1, "bad password: use at least 8 characters"),
        (["Alice", "--password-env", "PW"], {"PW": PASSWORD}, [], 1, "bad username 'Alice'"),
    ],
)
def test_create(db, prompts, monkeypatch, capsys, argv, env, answers, code, error):
    descent, factory = db
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    prompts.extend(answers)
    assert descent("user", "create", *argv) == code
    err = capsys.readouterr().err
    if error:
        assert error in one_line(err)
    created = users(factory)
    if code != 0:
        assert created == {}
        return
    alice = created["alice"]
    assert alice.is_admin == ("--admin" in argv) and not alice.disabled
    assert alice.password_hash.startswith("$argon2id$") and PASSWORD not in alice.password_hash
    assert verify_password(PASSWORD, alice.password_hash) and not verify_password(OTHER, alice.password_hash)


def test_create_refuses_an_existing_user_unless_if_missing(db, monkeypatch, capsys):
    descent, factory = db
    monkeypatch.setenv("PW", PASSWORD)
    assert descent("user", "create", "alice", "--password-env", "PW") == 0
    monkeypatch.setenv("PW", OTHER)
    assert descent("user", "create", "alice", "--password-env", "PW") == 1
    assert "user alice already exists" in one_line(capsys.readouterr().err)
    assert descent("user", "create", "alice", "--admin", "--password-env", "PW", "--if-missing") == 0
    alice = users(factory)["alice"]
    assert verify_password(PASSWORD, alice.password_hash) and not alice.is_admin  # nothing changed


def test_the_first_admin_owns_the_default_project(db, monkeypatch):
    from store.repositories import projects as projects_repo

    descent, factory = db
    monkeypatch.setenv("PW", PASSWORD)
    assert descent("user", "create", "root", "--admin", "--password-env", "PW") == 0
    with factory() as session:
        root = users_repo.by_username(session, "root")
        default = projects_repo.by_name(session, "default")
        assert projects_repo.roles_of(session, root.id) == {default.id: "owner"}


def test_list(db, monkeypatch, capsys):
    descent, _ = db
    monkeypatch.setenv("PW", PASSWORD)
    for argv in (["root", "--admin"], ["bob"]):
        assert descent("user", "create", *argv, "--password-env", "PW") == 0
    assert descent("user", "disable", "bob") == 0
    capsys.readouterr()
    assert descent("user", "list") == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["ID", "USERNAME", "ADMIN", "DISABLED", "CREATED"]
    cells = {row.split()[1]: row for row in rows}
    assert set(cells) == {"root", "bob"}
    admin, disabled = header.index("ADMIN"), header.index("DISABLED")
    assert cells["root"][admin:disabled].strip() == "yes" and cells["root"][disabled:].split()[0] != "yes"
    assert cells["bob"][admin:disabled].strip() == "" and cells["bob"][disabled:].split()[0] == "yes"
    assert PASSWORD not in capsys.readouterr().out


def test_disable_ends_sessions_and_stops_tokens_and_enable_restores_tokens(db, monkeypatch):
    descent, factory = db
    monkeypatch.setenv("PW", PASSWORD)
    assert descent("user", "create", "bob", "--password-env", "PW") == 0
    with session_scope(factory) as session:
        bob = users_repo.by_username(session, "bob")
        cookie, _ = web_sessions.start(session, bob, timedelta(hours=1))
        secret = tokens_repo.issue(session, name="t", user=bob).secret

    assert descent("user", "disable", "bob") == 0
    with factory() as session:
        assert session.scalars(select(WebSession)).all() == []
        assert tokens_repo.find_valid(session, secret) is None
        assert users_repo.by_username(session, "bob").disabled

    assert descent("user", "enable", "bob") == 0
    with factory() as session:
        assert tokens_repo.find_valid(session, secret) is not None
        assert web_sessions.find_valid(session, cookie) is None  # an ended session stays ended


def test_set_password_replaces_the_hash_and_ends_sessions(db, monkeypatch, prompts, capsys):
    descent, factory = db
    monkeypatch.setenv("PW", PASSWORD)
    assert descent("user", "create", "bob", "--password-env", "PW") == 0
    with session_scope(factory) as session:
        cookie, _ = web_sessions.start(session, users_repo.by_username(session, "bob"), timedelta(hours=1))
    prompts.extend([OTHER, OTHER])
    assert descent("user", "set-password", "bob") == 0
    bob = users(factory)["bob"]
    assert verify_password(OTHER, bob.password_hash) and not verify_password(PASSWORD, bob.password_hash)
    with factory() as session:
        assert web_sessions.find_valid(session, cookie) is None
    prompts.extend([PASSWORD, "x" * 3])
    assert descent("user", "set-password", "bob") == 1
    assert "differ" in one_line(capsys.readouterr().err)
    assert verify_password(OTHER, users(factory)["bob"].password_hash)


@pytest.mark.parametrize("argv", [["disable", "ghost"], ["enable", "ghost"], ["set-password", "ghost"]])
def test_an_unknown_user_is_one_line(db, prompts, capsys, argv):
    descent, _ = db
    assert descent("user", *argv) == 1
    assert one_line(capsys.readouterr().err) == "descent user: no user named 'ghost' (`descent user list` shows them)"
    assert prompts == []  # refused before asking for a password


def test_every_change_is_audited_as_the_command_line(db, monkeypatch, prompts):
    descent, factory = db
    monkeypatch.setenv("PW", PASSWORD)
    prompts.extend([OTHER, OTHER])
    steps = [("create", "bob", "--password-env", "PW"), ("disable", "bob"), ("enable", "bob"),
             ("set-password", "bob")]
    for argv in steps:
        assert descent("user", *argv) == 0
    with factory() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.actor, e.user_id, e.action, e.target) for e in events] == [
        ("cli", None, f"user.{argv[0]}", "user bob") for argv in steps]
    assert all(PASSWORD not in str(e.detail) and OTHER not in str(e.detail) for e in events)


@pytest.mark.parametrize("revision, error", [
    (None, "no database at {path}: run `descent migrate` first"),
    ("0001", "is at migration 0001, not "),
])
def test_a_database_not_migrated_is_one_line(tmp_path, capsys, revision, error):
    path = tmp_path / "fresh.db"
    url = f"sqlite:///{path}"
    if revision:
        upgrade(url, revision)
    for argv in (["user", "list"], ["token", "list"], ["user", "disable", "bob"]):
        assert cli.main([*argv, "--database-url", url]) == 1
        assert error.format(path=path) in one_line(capsys.readouterr().err)
    assert path.exists() == bool(revision)  # looking did not create an empty file


def test_an_unreachable_database_is_one_line(capsys):
    url = "postgresql+psycopg://nobody:x@127.0.0.1:1/none"
    assert cli.main(["user", "list", "--database-url", url]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith("descent user: cannot reach the database at postgresql+psycopg://nobody:***@")


def test_bootstrap_local_is_not_listed():
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["user"].format_help()
    assert "bootstrap-local" not in help_text and "set-password" in help_text
