"""The command line's tests: never the real home's token file, and a migrated database per test
for the commands that work on it directly (an SQLite file, and PostgreSQL)."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import text

from store.db import make_engine
from store.migrate import upgrade
from tests.services import scratch_database

# identity rows a test may leave behind on the shared PostgreSQL database (projects stay: the
# migration made `default`)
IDENTITY_TABLES = ("audit_events", "login_links", "web_sessions", "api_tokens", "memberships", "users")


@pytest.fixture(autouse=True)
def config_home(tmp_path, monkeypatch):
    """``$XDG_CONFIG_HOME`` in a temporary folder (children inherit it), and no token or api
    address from the shell."""
    folder = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    for name in ("DESCENT_TOKEN", "DESCENT_URL", "DESCENT_DATABASE_URL", "DESCENT_ALLOWED_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "descent.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _postgresql_database():
    with scratch_database() as url:
        yield url


@pytest.fixture(params=("sqlite", "postgresql"))
def database_url(request, tmp_path):
    """A database at the newest migration with no users: a copy of a migrated SQLite file, or
    the session's PostgreSQL database emptied of users, tokens and the rest after the test."""
    if request.param == "sqlite":
        path = tmp_path / "descent.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("_postgresql_database")
    yield url
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(IDENTITY_TABLES)} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()
