"""Database fixtures shared by tests/store and tests/api (their conftests import them): a scratch
PostgreSQL database (``tests.services.scratch_database``) and a temporary SQLite file per test
session, both migrated with the real Alembic migrations, and a per-test transaction rolled back
at the end (requests commit to savepoints inside it)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import sessionmaker

from store.db import make_engine
from store.migrate import upgrade
from tests.services import scratch_database

DIALECTS = ("postgresql", "sqlite")


@pytest.fixture(scope="session")
def postgresql_url():
    with scratch_database() as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'descent.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgresql_engine(postgresql_url):
    engine = make_engine(postgresql_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_engine(sqlite_url):
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=DIALECTS)
def engine(request):
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture
def connection(engine):
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def session_factory(connection):
    """Sessions joined to the test's transaction: their commits release savepoints only."""
    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def session(session_factory):
    s = session_factory()
    yield s
    s.close()
