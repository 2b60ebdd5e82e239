"""A throwaway PostgreSQL database for the test suite and the benchmarks: created empty on the
server an admin URL names, migrated to the newest schema unless told not to, and dropped with
every connection to it when the block ends, whatever happened."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from store.migrate import upgrade


@contextmanager
def scratch_database(admin_url: str, *, migrate: bool = True, prefix: str = "descent_scratch") -> Iterator[str]:
    """Yield the URL (``postgresql+psycopg``) of a new database on ``admin_url``'s server."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin_url = make_url(admin_url).set(drivername="postgresql+psycopg")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = admin_url.set(database=name).render_as_string(hide_password=False)
        if migrate:
            upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
