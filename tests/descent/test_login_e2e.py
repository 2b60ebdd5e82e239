"""``descent login`` and ``descent logout`` against a real api (``descent up`` in a subprocess,
api only), as a person on another account of the same machine would use them (their own token
file), and what ``up`` does when the token it saved no longer works (its data folder reset)."""

from __future__ import annotations

import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from descent import credentials
from descent.client import Client
from store.db import make_engine, make_sessionmaker
from store.repositories import tokens as tokens_repo
from tests.descent.running import ROOT, Up, free_port

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"


def descent(*args: str, env: dict[str, str], **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "descent.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**env, **extra})


def not_signed_in(url: str) -> str:
    return f"not signed in to {url}: run `descent login --url {url}` (or pass --token / set DESCENT_TOKEN)\n"


def test_login_saves_a_token_the_cli_uses_and_logout_revokes_it(tmp_path):
    up = Up(tmp_path, free_port(), "--no-worker")
    try:
        up.wait_ready()
        database = f"sqlite:///{up.data_dir / 'descent.db'}"
        set_password = descent("user", "set-password", "admin", "--password-env", "PW", "--database-url", database,
                               env=up.env, PW=PASSWORD)
        assert set_password.returncode == 0, set_password.stderr

        # someone else on this machine: their own token file, nothing saved yet
        person = {**up.env, "XDG_CONFIG_HOME": str(tmp_path / "person")}
        path = tmp_path / "person" / "descent" / "tokens.json"
        refused = descent("ls", "--url", up.url, env=person)
        assert (refused.returncode, refused.stderr) == (1, not_signed_in(up.url))

        wrong = descent("login", "--url", up.url, "--username", "admin", "--password-env", "PW", env=person,
                        PW="not the password")
        assert wrong.returncode == 1 and wrong.stderr == f"descent login: wrong username or password for {up.url}\n"
        assert not path.exists()

        signed = descent("login", "--url", up.url, "--username", "admin", "--password-env", "PW", env=person,
                         PW=PASSWORD)
        assert signed.returncode == 0, signed.stderr
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        token = credentials.load_tokens(path)[up.url]
        assert token != up.token and token[:12] in signed.stdout and token not in signed.stdout

        listed = descent("ls", "--url", up.url, env=person)
        assert listed.returncode == 0 and listed.stdout.startswith("ID "), listed.stderr
        with Client(up.url, token) as client:
            mine = {t["prefix"]: t for t in client.tokens()}
            assert mine[token[:12]]["name"] == f"descent login on {socket.gethostname()}"
            assert client.me()["username"] == "admin"
        check_the_login_session_was_ended(database)

        # an explicit token and $DESCENT_TOKEN come before the file
        bogus = "dsc_" + "z" * 43
        assert descent("ls", "--url", up.url, "--token", bogus, env=person).returncode == 1
        assert descent("ls", "--url", up.url, env=person, DESCENT_TOKEN=bogus).stderr == not_signed_in(up.url)
        assert descent("ls", "--url", up.url, "--token", up.token, env=person, DESCENT_TOKEN=bogus).returncode == 0

        out = descent("logout", "--url", up.url, env=person)
        assert out.returncode == 0 and "revoked" in out.stdout, out.stderr
        assert credentials.load_tokens(path) == {}
        engine = make_engine(database)
        try:
            with make_sessionmaker(engine)() as session:
                assert tokens_repo.find_valid(session, token) is None
                (row,) = [t for t in tokens_repo.list_for(session) if t.prefix == token[:12]]
                assert row.revoked_at is not None
        finally:
            engine.dispose()
        again = descent("ls", "--url", up.url, env=person)
        assert (again.returncode, again.stderr) == (1, not_signed_in(up.url))
        assert descent("ls", "--url", up.url, env=up.env).returncode == 0  # up's own token is untouched
        assert up.interrupt() == 0, up.output()
    finally:
        up.kill()


def check_the_login_session_was_ended(database: str) -> None:
    from sqlalchemy import func, select

    from store.models import WebSession

    engine = make_engine(database)
    try:
        with make_sessionmaker(engine)() as session:
            assert session.scalar(select(func.count()).select_from(WebSession)) == 0
    finally:
        engine.dispose()


def test_up_replaces_a_token_that_no_longer_works(tmp_path):
    """After the data folder is deleted, the next ``up`` makes a new admin and a new token and
    rewrites the token file, so the CLI works again with no manual step."""
    port = free_port()
    first = Up(tmp_path, port, "--no-worker")
    try:
        first.wait_ready()
        old = first.token
        assert first.interrupt() == 0, first.output()
    finally:
        first.kill()
    shutil.rmtree(first.data_dir)

    second = Up(tmp_path, port, "--no-worker")
    try:
        second.wait_ready()
        assert second.token != old
        assert (second.data_dir / "admin.token").read_text().strip() == second.token
        assert "created the admin user `admin`" in second.output()
        listed = descent("ls", "--url", second.url, env=second.env)
        assert listed.returncode == 0, listed.stderr
        assert second.interrupt() == 0, second.output()
    finally:
        second.kill()


def test_no_test_here_touches_the_real_token_file(config_home):
    assert credentials.tokens_path().is_relative_to(config_home)
    assert not credentials.tokens_path().is_relative_to(Path.home() / ".config")
