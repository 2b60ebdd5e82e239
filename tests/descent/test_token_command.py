"""``descent token`` on a real database (a migrated SQLite file, and PostgreSQL): the secret is
printed once, alone on stdout, and only its SHA-256 is stored; lists never show it; a revoked
token stops working; refusals are one line (exit 1)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from core.auth import looks_like_token
from descent import cli
from store.db import make_engine, make_sessionmaker, session_scope
from store.models import ApiToken, utcnow
from store.repositories import tokens as tokens_repo
from store.repositories import users as users_repo
from tests.identity import make_user


@pytest.fixture
def db(database_url):
    """(run ``descent ARGS --database-url URL``, a session factory), with users alice and bob."""
    engine = make_engine(database_url)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as session:
        make_user(session, "alice")
        make_user(session, "bob")

    def descent(*args: str) -> int:
        return cli.main([*args, "--database-url", database_url])

    yield descent, factory, engine
    engine.dispose()


def one_line(text_: str) -> str:
    lines = text_.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def create(descent, capsys, *argv: str) -> tuple[str, str]:
    assert descent("token", "create", *argv) == 0
    out = capsys.readouterr()
    return one_line(out.out), out.err


def test_create_prints_the_secret_alone_and_stores_only_its_hash(db, capsys):
    descent, factory, engine = db
    secret, hint = create(descent, capsys, "alice", "--name", "laptop")
    assert looks_like_token(secret) and len(secret) == len("dsc_") + 43
    assert "shown this once" in hint and secret not in hint and secret[:12] in hint
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM api_tokens"))]
        audit = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM audit_events"))]
    (row,) = rows
    assert row["hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert row["prefix"] == secret[:12]
    for column, value in row.items():  # the secret is in no column, whole or in part beyond the prefix
        assert secret not in str(value) and secret[12:20] not in str(value), column
    assert audit and all(secret[12:] not in str(event) for event in audit)
    with factory() as session:
        token, user = tokens_repo.find_valid(session, secret)
        assert (token.kind, token.name, user.username, token.expires_at) == ("user", "laptop", "alice", None)


def test_create_with_an_expiry(db, capsys):
    descent, factory, _ = db
    before = utcnow()
    secret, hint = create(descent, capsys, "bob", "--name", "ci", "--expires-in-days", "7")
    with factory() as session:
        token, _ = tokens_repo.find_valid(session, secret)
        assert before + timedelta(days=7) <= token.expires_at <= utcnow() + timedelta(days=7)
        assert tokens_repo.find_valid(session, secret, now=token.expires_at) is None  # refused once expired
    assert "expires" in hint


def test_create_a_worker_token(db, capsys):
    descent, factory, _ = db
    secret, _ = create(descent, capsys, "--worker", "--name", "gpu-box")
    with factory() as session:
        token, user = tokens_repo.find_valid(session, secret)
        assert (token.kind, token.user_id, user) == ("worker", None, None)


@pytest.mark.parametrize(
    "argv, error",
    [
        (["ghost", "--name", "x"], "no user named 'ghost'"),
        (["alice", "--worker", "--name", "x"], "name a user"),
        (["--name", "x"], "name a user"),
        (["alice", "--name", " "], "--name must have 1-100 characters"),
        (["alice", "--name", "x" * 101], "--name must have 1-100 characters"),
        (["alice", "--name", "x", "--expires-in-days", "0"], "--expires-in-days must be 1-3650"),
        (["carol", "--name", "x"], "user carol is disabled"),
    ],
)
def test_create_refusals_are_one_line_and_store_nothing(db, capsys, argv, error):
    descent, factory, _ = db
    with session_scope(factory) as session:
        users_repo.set_disabled(session, make_user(session, "carol"), True)
    assert descent("token", "create", *argv) == 1
    out = capsys.readouterr()
    assert out.out == "" and error in one_line(out.err)
    with factory() as session:
        assert session.scalars(select(ApiToken)).all() == []


def test_list_shows_every_field_but_the_secret(db, capsys):
    descent, _, _ = db
    secrets = {argv[0]: create(descent, capsys, *argv)[0]
               for argv in (["alice", "--name", "laptop"], ["bob", "--name", "ci"], ["--worker", "--name", "w"])}
    assert descent("token", "revoke", "2") == 0
    capsys.readouterr()

    assert descent("token", "list") == 0
    out = capsys.readouterr().out
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "USER", "KIND", "NAME", "PREFIX", "CREATED", "EXPIRES", "LAST", "USED", "REVOKED"]
    assert [row.split()[:5] for row in rows] == [
        ["1", "alice", "user", "laptop", secrets["alice"][:12]],
        ["2", "bob", "user", "ci", secrets["bob"][:12]],
        ["3", "-", "worker", "w", secrets["--worker"][:12]],
    ]
    revoked = header.index("REVOKED")
    assert [row[revoked:].strip() != "-" for row in rows] == [False, True, False]
    assert not any(s[12:20] in out for s in secrets.values())

    assert descent("token", "list", "alice") == 0
    assert [row.split()[1] for row in capsys.readouterr().out.splitlines()[1:]] == ["alice"]


def test_revoke(db, capsys):
    descent, factory, _ = db
    secret, _ = create(descent, capsys, "alice", "--name", "laptop")
    assert descent("token", "revoke", "1") == 0
    assert one_line(capsys.readouterr().out) == f"token 1 ({secret[:12]}…) revoked"
    with factory() as session:
        assert tokens_repo.find_valid(session, secret) is None
        assert tokens_repo.get(session, 1).revoked_at is not None
    assert descent("token", "revoke", "1") == 0
    assert "already revoked" in capsys.readouterr().out
    assert descent("token", "revoke", "99") == 1
    assert one_line(capsys.readouterr().err) == "descent token: no token 99 (`descent token list` shows them)"

