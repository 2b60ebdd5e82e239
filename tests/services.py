"""Where the tests find the real services, and throwaway pieces of them.

``scripts/test-services.sh`` (sourced by ``./dev test``) makes sure a PostgreSQL and a Redis
server answer, installs the tools some tests drive (chromium, docker-compose), and exports
``DESCENT_TEST_POSTGRES_URL`` (an admin URL) and ``DESCENT_TEST_REDIS_URL``.  Tests never install
anything themselves: a missing service or tool fails the test with what to run, it is never
skipped.  Fixtures stay in each layer's conftest; this module holds plain helpers only."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

import store.scratch

POSTGRES_ADMIN_URL = os.environ.get(
    "DESCENT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("DESCENT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def scratch_database(*, migrate: bool = True, prefix: str = "descent_test"):
    """A fresh PostgreSQL database on the test server (``store.scratch``); yields its URL."""
    return store.scratch.scratch_database(POSTGRES_ADMIN_URL, migrate=migrate, prefix=prefix)


def redis_url(db: int) -> str:
    """``DESCENT_TEST_REDIS_URL`` (host, port, credentials) pointing at database number ``db``."""
    parts = urlsplit(REDIS_URL)
    return urlunsplit(parts._replace(path=f"/{db}"))


@contextmanager
def scratch_redis(db: int) -> Iterator[str]:
    """Redis database ``db`` of the test server, emptied before and after; yields its URL.
    Each suite that needs one uses its own number, so none empties another's queues."""
    import redis

    url = redis_url(db)
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def require_executable(name: str, package: str | None = None) -> str:
    """The path of ``name``; fails the test (never skips it) when it is not installed."""
    found = shutil.which(name)
    if not found:
        pytest.fail(
            f"`{name}` is not installed: run the tests with `./dev test` (scripts/test-services.sh installs it) "
            f"or `apt-get install -y --no-install-recommends {package or name}`"
        )
    return found
