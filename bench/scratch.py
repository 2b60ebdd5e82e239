"""A scratch PostgreSQL database for the benchmarks that need one (``api``, ``engine``'s queue
latency): created empty and migrated, dropped at the end, whatever happened."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

ADMIN_URL = os.environ.get("DESCENT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def scratch_database(admin_url: str = ADMIN_URL) -> Iterator[str]:
    """Yield the url of a new, migrated database on the server ``admin_url`` names."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from store.migrate import upgrade

    name = f"descent_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(make_url(admin_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
