"""Real services for worker tests: a scratch PostgreSQL database with the migrations applied,
split and experiment rows made through the repositories, a Redis database of our own."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url

from store.db import make_engine, make_sessionmaker, session_scope
from store.migrate import upgrade
from store.models import Split
from store.repositories import experiments, splits
from tests.worker.splits import builtin_indices

ADMIN_URL = os.environ.get("DESCENT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("DESCENT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextmanager
def scratch_database():
    """A fresh PostgreSQL database at the newest schema; dropped afterwards."""
    name = f"descent_worker_{uuid.uuid4().hex[:12]}"
    admin = make_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def redis_url_with_db(db: int) -> str:
    return str(make_url(REDIS_URL.replace("redis://", "postgresql://")).set(database=str(db))).replace(
        "postgresql://", "redis://"
    )


def add_builtin_split(sessions, dataset: str) -> int:
    """A split row whose frozen indices are the ones ``tests.worker.splits.builtin_split`` uses."""
    parts = dict(zip(("train", "val", "test"), (idx.tolist() for idx in builtin_indices(dataset))))
    with session_scope(sessions) as session:
        split = splits.add(session, Split(
            builtin=dataset, strategy="stratified", fractions={"train": 0.6, "val": 0.2, "test": 0.2}, seed=0,
            train_indices=parts["train"], val_indices=parts["val"], test_indices=parts["test"],
            summary={p: len(v) for p, v in parts.items()},
        ))
        return split.id


def add_experiment(sessions, spec, queue: str = "cpu", stored: dict | None = None) -> int:
    """A queued experiment of ``spec`` (``stored``: the JSON to store instead, for broken specs)."""
    with session_scope(sessions) as session:
        experiment = experiments.create(
            session, name=spec.name, spec=stored or spec.model_dump(mode="json"), solver=spec.solver.name, tags=list(spec.tags),
            split_id=spec.split_id, queue=queue,
        )
        return experiment.id


def sessions_for(url: str):
    return make_sessionmaker(make_engine(url))
