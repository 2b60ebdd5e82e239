from __future__ import annotations

import pytest
from sqlalchemy import text

from store.db import make_engine, session_scope
from store.models import Split


def test_sqlite_engine_turns_on_wal_foreign_keys_and_busy_timeout(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    engine.dispose()


def test_session_scope_commits_or_rolls_back(session_factory, connection):
    def count() -> int:
        return connection.execute(text("SELECT count(*) FROM splits WHERE builtin = 'wine'")).scalar()

    def split() -> Split:
        return Split(builtin="wine", strategy="random", fractions={}, seed=0, train_indices=[0],
                     val_indices=[], test_indices=[], summary={})

    with session_scope(session_factory) as s:
        s.add(split())
    assert count() == 1
    with pytest.raises(RuntimeError), session_scope(session_factory) as s:
        s.add(split())
        s.flush()
        raise RuntimeError("boom")
    assert count() == 1


def test_foreign_keys_are_enforced(session):
    from sqlalchemy.exc import IntegrityError

    from store.repositories import experiments

    with pytest.raises(IntegrityError):
        experiments.create(session, name="orphan", spec={}, solver="sgd", tags=[], split_id=999_999, queue="cpu")
