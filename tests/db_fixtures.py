"""Database fixtures shared by tests/store and tests/api: a scratch PostgreSQL database and a
temporary SQLite file per test session, both migrated with the real Alembic migrations, and a
per-test transaction rolled back at the end (requests commit to savepoints inside it)."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from store.db import make_engine
from store.migrate import upgrade

POSTGRES_ADMIN_URL = os.environ.get(
    "DESCENT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("DESCENT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DIALECTS = ("postgresql", "sqlite")


def scratch_postgres_url(admin_url: str = POSTGRES_ADMIN_URL) -> tuple[str, callable]:
    """Create an empty database; returns its url and a function that drops it."""
    name = f"descent_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(admin_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


@pytest.fixture(scope="session")
def postgresql_url():
    url, drop = scratch_postgres_url()
    upgrade(url)
    yield url
    drop()


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
